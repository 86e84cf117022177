using System.Net;
using System.Net.NetworkInformation;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Protocol;
using Orleans.Configuration;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Hosting;

/// <summary>Two nodes whose silo and gateway ports speak TLS with certificates of the cluster's own CA.</summary>
public sealed class TlsClusterFixture : TwoNodeFixture
{
    private readonly string _directory = Directory.CreateTempSubdirectory("orleansiot-cluster-tls-").FullName;

    public TlsClusterFixture()
    {
        Ca = TestCertificates.NewCa("Cluster CA " + Guid.NewGuid());
        File.WriteAllText(CaPath, Ca.ExportCertificatePem());
        foreach (var node in (string[])["A", "B"])
        {
            using var certificate = TestCertificates.Issue(Ca, "silo-" + node);
            File.WriteAllText(Path.Combine(_directory, node + ".crt"), certificate.ExportCertificatePem());
            File.WriteAllText(Path.Combine(_directory, node + ".key"), certificate.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());
        }
    }

    public X509Certificate2 Ca { get; }

    private string CaPath => Path.Combine(_directory, "ca.pem");

    protected override IEnumerable<string> NodeSettings(string node) =>
    [
        $"Orleans:Tls:CertificatePath={Path.Combine(_directory, node + ".crt")}",
        $"Orleans:Tls:KeyPath={Path.Combine(_directory, node + ".key")}",
        $"Orleans:Tls:CaCertificatePath={CaPath}",
    ];

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        Directory.Delete(_directory, recursive: true);
    }
}

/// <summary>
/// The cluster's own ports: closed to other machines by default, and with <c>Orleans:Tls</c> open only to silos and
/// clients holding a certificate of the cluster's CA (the gateway port lets a client call grains directly, past API
/// keys, policies and the audit log).
/// </summary>
public sealed class ClusterTlsTests(TlsClusterFixture nodes) : IClassFixture<TlsClusterFixture>
{
    private static int SiloPort(NodeFixture node) =>
        node.App.Services.GetRequiredService<IOptions<EndpointOptions>>().Value.SiloListeningEndpoint!.Port;

    [Fact]
    public async Task TwoNodes_FormOneCluster_OverTls()
    {
        var topic = $"tls-cluster/{Guid.NewGuid():N}";
        var subscriber = await nodes.A.ConnectAsync(Ids.NewId("sub"));
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage.ConvertPayloadToString());
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);

        var publisher = await nodes.B.ConnectAsync(Ids.NewId("pub"));
        await publisher.PublishStringAsync(topic, "across", MqttQualityOfServiceLevel.AtLeastOnce);

        Assert.Equal("across", await received.Task.WaitAsync(TimeSpan.FromSeconds(15)));
    }

    [Fact]
    public async Task ACertificateOfAnotherCa_IsRefusedAtTheHandshake_AndTheClusterCaIsAccepted()
    {
        using var stranger = TestCertificates.Issue(TestCertificates.NewCa("Other CA"), "intruder");
        using var member = TestCertificates.Issue(nodes.Ca, "backend");

        Assert.False(await HandshakeAsync(SiloPort(nodes.A), stranger));
        Assert.True(await HandshakeAsync(SiloPort(nodes.A), member));
    }

    [Fact]
    public async Task PlainTcp_ToTheSiloPort_GetsNoOrleansConversation()
    {
        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, SiloPort(nodes.A));
        var stream = socket.GetStream();
        await stream.WriteAsync(new byte[64]);   // not a TLS ClientHello
        var read = 0;
        try
        {
            read = await stream.ReadAsync(new byte[64]).AsTask().WaitAsync(TimeSpan.FromSeconds(10));
        }
        catch (IOException)
        {
            // reset: refused as well
        }

        Assert.Equal(0, read);
    }

    [Fact]
    public void TheSiloAndGatewayPorts_ListenWhereIotBindAddressSays()
    {
        var endpoints = nodes.A.App.Services.GetRequiredService<IOptions<EndpointOptions>>().Value;

        Assert.Equal(IPAddress.Loopback, endpoints.SiloListeningEndpoint!.Address);     // the fixtures bind 127.0.0.1
        Assert.Equal(IPAddress.Loopback, endpoints.GatewayListeningEndpoint!.Address);
        var outside = NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Select(a => a.Address)
            .FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork && !IPAddress.IsLoopback(a));
        if (outside is not null)
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            var error = Assert.Throws<SocketException>(() => socket.Connect(outside, endpoints.SiloListeningEndpoint.Port));
            Assert.Equal(SocketError.ConnectionRefused, error.SocketErrorCode);
        }
    }

    /// <summary>Whether a TLS handshake with this client certificate completes (the server asks for one and checks it).</summary>
    private static async Task<bool> HandshakeAsync(int port, X509Certificate2 certificate)
    {
        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, port);
        using var tls = new SslStream(socket.GetStream());
        try
        {
            await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "silo",
                ClientCertificates = [certificate],
#pragma warning disable CA5359 // the test looks at what the server decides about us, not the other way round
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
#pragma warning restore CA5359
            }).WaitAsync(TimeSpan.FromSeconds(10));
            // TLS 1.3 reports a refused client certificate only on the first read after the handshake.
            var read = await tls.ReadAsync(new byte[1]).AsTask().WaitAsync(TimeSpan.FromSeconds(3));
            return read > 0;
        }
        catch (Exception ex) when (ex is IOException or System.Security.Authentication.AuthenticationException)
        {
            return false;
        }
        catch (TimeoutException)
        {
            return true;   // accepted, and the server waits for Orleans' own first bytes
        }
    }
}
