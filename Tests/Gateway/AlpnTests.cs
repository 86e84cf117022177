using System.Diagnostics;
using System.Net;
using System.Net.Security;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Security;

namespace OrleansIot.Tests.Gateway;

/// <summary>
/// What each TLS listener negotiates by ALPN, seen by OpenSSL's own client: MQTT's protocols on 8883 (AWS's SDK v2
/// always offers <c>x-amzn-mqtt-ca</c>), HTTP's on 8443, both on the multiplexed port. A client that offers ALPN but
/// nothing the listener serves gets the alert no_application_protocol (RFC 7301); one that offers none is served.
/// </summary>
public sealed class AlpnTests(MultiplexNodeFixture node) : IClassFixture<MultiplexNodeFixture>
{
    public enum Listener
    {
        Mqtt,
        Https,
        Multiplexed,
    }

    private const string Refused = "alert";
    private const string NoAlpn = "none";

    [Theory]
    [InlineData(Listener.Mqtt, "x-amzn-mqtt-ca", "x-amzn-mqtt-ca")]
    [InlineData(Listener.Mqtt, "mqtt", "mqtt")]
    [InlineData(Listener.Mqtt, null, NoAlpn)]
    [InlineData(Listener.Mqtt, "http/1.1", Refused)]
    [InlineData(Listener.Mqtt, "unknown-protocol", Refused)]
    [InlineData(Listener.Https, "h2", "h2")]
    [InlineData(Listener.Https, "http/1.1", "http/1.1")]
    [InlineData(Listener.Https, "x-amzn-http-ca", "x-amzn-http-ca")]
    [InlineData(Listener.Https, null, NoAlpn)]
    [InlineData(Listener.Https, "x-amzn-mqtt-ca", Refused)]
    [InlineData(Listener.Multiplexed, "x-amzn-mqtt-ca", "x-amzn-mqtt-ca")]
    [InlineData(Listener.Multiplexed, "mqtt", "mqtt")]
    [InlineData(Listener.Multiplexed, "h2,http/1.1", "h2")]
    [InlineData(Listener.Multiplexed, "x-amzn-http-ca", "x-amzn-http-ca")]
    [InlineData(Listener.Multiplexed, null, NoAlpn)]
    [InlineData(Listener.Multiplexed, "unknown-protocol", Refused)]
    public async Task OpenSslClient_NegotiatesWhatTheListenerServes(Listener listener, string? offered, string expected)
    {
        var port = listener switch
        {
            Listener.Mqtt => node.TlsPort,
            Listener.Https => node.HttpsPort,
            _ => node.MultiplexPort,
        };
        await Eventually.True(async () => (await node.Http.GetAsync("/health")).IsSuccessStatusCode, "the node");

        Assert.Equal(expected, await NegotiateAsync(port, offered));
    }

    [Fact]
    public async Task MultiplexedPort_CarriesMqtt_ForTheAlpnAwsDevicesOffer()
    {
        var ca = await Devices.PlatformCaAsync(node.Http);
        await Devices.CreatePolicyAsync(node.Http, "per-thing", Devices.PerThingPolicy);
        var thing = "mux-" + Guid.NewGuid().ToString("N")[..8];
        var device = await Devices.CreateAsync(node.Http, thing, "per-thing");
        var client = node.NewClient();
        var options = new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", node.MultiplexPort)
            .WithClientId(thing)
            .WithTlsOptions(o => o.UseTls()
                .WithClientCertificates([device.Certificate])
                .WithCertificateValidationHandler(e => Devices.ChainsTo(e.Certificate, ca))
                .WithApplicationProtocols([new SslApplicationProtocol("x-amzn-mqtt-ca")]))
            .Build();
        Assert.Equal(MqttClientConnectResultCode.Success, (await client.ConnectAsync(options)).ResultCode);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage.ConvertPayloadToString());
            return Task.CompletedTask;
        };
        await client.SubscribeAsync($"devices/{thing}/echo", MqttQualityOfServiceLevel.AtLeastOnce);

        await client.PublishStringAsync($"devices/{thing}/echo", "through 443", MqttQualityOfServiceLevel.AtLeastOnce);

        Assert.Equal("through 443", await received.Task.WaitAsync(TimeSpan.FromSeconds(10)));
    }

    [Fact]
    public async Task MultiplexedPort_ServesHttps_ToClientsOfferingHttp()
    {
        var ca = await Devices.PlatformCaAsync(node.Http);
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, certificate, _, _) => Devices.ChainsTo(certificate, ca) };
        using var https = new HttpClient(handler) { BaseAddress = new Uri($"https://localhost:{node.MultiplexPort}") };

        var http1 = await https.GetAsync("/health");
        using var request = new HttpRequestMessage(HttpMethod.Get, "/health") { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var http2 = await https.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, http1.StatusCode);
        Assert.Equal(HttpStatusCode.OK, http2.StatusCode);
        Assert.Equal(HttpVersion.Version20, http2.Version);
    }

    /// <summary>The protocol <c>openssl s_client</c> negotiated, <see cref="NoAlpn"/>, or <see cref="Refused"/> for the alert.</summary>
    private static async Task<string> NegotiateAsync(int port, string? offered)
    {
        var start = new ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["s_client", "-connect", $"127.0.0.1:{port}", "-servername", "localhost", .. offered is null ? Array.Empty<string>() : ["-alpn", offered]])
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("openssl did not start");
        process.StandardInput.Close();   // end the session as soon as the handshake is done
        var output = await process.StandardOutput.ReadToEndAsync() + await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
        if (output.Contains("no application protocol", StringComparison.Ordinal))
        {
            return Refused;
        }

        if (output.Contains("No ALPN negotiated", StringComparison.Ordinal))
        {
            return NoAlpn;
        }

        var line = output.Split('\n').FirstOrDefault(l => l.StartsWith("ALPN protocol: ", StringComparison.Ordinal));
        return line?["ALPN protocol: ".Length..].Trim() ?? throw new InvalidOperationException("openssl said neither: " + output);
    }
}
