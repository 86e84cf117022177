using System.Net;
using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Microsoft.Extensions.Options;
using OrleansIot.Silo.Hosting;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Gateway;

/// <summary>A node with a server certificate (PEM files): MQTT over TLS, HTTPS and secure WebSockets open.</summary>
public sealed class TlsNodeFixture : NodeFixture
{
    private readonly string _directory = Directory.CreateTempSubdirectory("orleansiot-tls-").FullName;

    public TlsNodeFixture()
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("CN=localhost", key, HashAlgorithmName.SHA256);
        var names = new SubjectAlternativeNameBuilder();
        names.AddDnsName("localhost");
        names.AddIpAddress(IPAddress.Loopback);
        request.CertificateExtensions.Add(names.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid("1.3.6.1.5.5.7.3.1")], false));
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        Certificate = X509CertificateLoader.LoadCertificate(certificate.RawData);
        CertificatePath = Path.Combine(_directory, "server.crt");
        KeyPath = Path.Combine(_directory, "server.key");
        File.WriteAllText(CertificatePath, certificate.ExportCertificatePem());
        File.WriteAllText(KeyPath, key.ExportPkcs8PrivateKeyPem());
    }

    public X509Certificate2 Certificate { get; }
    public string CertificatePath { get; }
    public string KeyPath { get; }

    protected override bool Tls => true;

    protected override IEnumerable<string> Settings =>
    [
        $"Iot:Tls:CertificatePath={CertificatePath}",
        $"Iot:Tls:KeyPath={KeyPath}",
    ];

    /// <summary>Trusts exactly this node's self-signed certificate.</summary>
    public bool Validate(X509Certificate? presented) => Devices.ChainsTo(presented, Certificate);
}

public sealed class TlsListenerTests(TlsNodeFixture node) : IClassFixture<TlsNodeFixture>
{
    private const string AllowAll = """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}""";

    /// <summary>A device certificate from the platform CA with a policy that allows everything.</summary>
    private async Task<X509Certificate2> DeviceCertificateAsync()
    {
        await Devices.CreatePolicyAsync(node.Http, "tls-allow-all", AllowAll);
        return (await Devices.CreateAsync(node.Http, "tls-" + Guid.NewGuid().ToString("N")[..8], "tls-allow-all")).Certificate;
    }

    private async Task<MqttClientOptionsBuilder> TlsOptionsAsync(MqttClientOptionsBuilder builder)
    {
        var certificate = await DeviceCertificateAsync();
        return builder.WithTlsOptions(o => o.UseTls().WithClientCertificates([certificate]).WithCertificateValidationHandler(e => node.Validate(e.Certificate)));
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task MqttOverTls_ConnectsAndDelivers(MqttProtocolVersion version)
    {
        var root = "tls-" + Guid.NewGuid().ToString("N")[..8];
        var client = node.NewClient();
        var options = (await TlsOptionsAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", node.TlsPort).WithClientId(root).WithProtocolVersion(version))).Build();
        Assert.Equal(MqttClientConnectResultCode.Success, (await client.ConnectAsync(options)).ResultCode);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage.ConvertPayloadToString());
            return Task.CompletedTask;
        };
        await client.SubscribeAsync($"{root}/echo", MqttQualityOfServiceLevel.AtLeastOnce);

        await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{root}/echo").WithPayload("secret").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

        Assert.Equal("secret", await received.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task MqttOverSecureWebSockets_Connects()
    {
        var client = node.NewClient();
        var options = (await TlsOptionsAsync(new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri($"wss://localhost:{node.HttpsPort}/mqtt"))
            .WithClientId("wss-" + Guid.NewGuid().ToString("N")[..8])))
            .Build();
        Assert.Equal(MqttClientConnectResultCode.Success, (await client.ConnectAsync(options)).ResultCode);
    }

    [Fact]
    public async Task MqttOverTls_WithoutAClientCertificate_IsRefusedAsNotAuthorized()
    {
        // Development access is on (embedded default), but only on the plain listener: TLS means certificates.
        var options = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", node.TlsPort).WithClientId("no-cert")
            .WithTlsOptions(o => o.UseTls().WithCertificateValidationHandler(e => node.Validate(e.Certificate))).Build();
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, (await node.NewClient().ConnectAsync(options)).ResultCode);
    }

    [Fact]
    public async Task Https_ServesTheApi()
    {
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => node.Validate(cert) };
        using var https = new HttpClient(handler) { BaseAddress = new Uri($"https://localhost:{node.HttpsPort}") };
        var response = await https.GetAsync("/health");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task UntrustedServerCertificate_IsRefusedByAStrictClient()
    {
        // The negative control: a client that trusts nothing must fail, so the tests above prove real TLS.
        var client = node.NewClient();
        var options = new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", node.TlsPort).WithClientId("strict")
            .WithTlsOptions(o => o.UseTls().WithCertificateValidationHandler(_ => false)).Build();
        await Assert.ThrowsAnyAsync<Exception>(() => client.ConnectAsync(options));
    }

    [Theory]
    [InlineData("missing.crt", null, "Iot:Tls:CertificatePath")]
    [InlineData("{cert}", null, "Iot:Tls:KeyPath")]
    [InlineData("{key}", "{key}", "Iot:Tls:CertificatePath")]
    public void BadCertificateSettings_StopTheNodeNamingTheKey(string certificate, string? key, string expectedKey)
    {
        string Resolve(string value) => value.Replace("{cert}", node.CertificatePath, StringComparison.Ordinal).Replace("{key}", node.KeyPath, StringComparison.Ordinal);
        string[] args = key is null
            ? [$"--Iot:Tls:CertificatePath={Resolve(certificate)}"]
            : [$"--Iot:Tls:CertificatePath={Resolve(certificate)}", $"--Iot:Tls:KeyPath={Resolve(key)}"];
        var error = Assert.Throws<OptionsValidationException>(() => IotSiloHost.CreateApplication(args));
        Assert.Contains(expectedKey, error.Message, StringComparison.Ordinal);
    }
}
