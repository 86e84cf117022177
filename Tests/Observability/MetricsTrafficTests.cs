using System.Net;
using System.Net.Http.Json;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Observability;

/// <summary>
/// The counters a node exports after traffic it was sent, read as Prometheus does. The node is a process of its own:
/// in this test process several nodes share the meters' names, and a scrape would add up all of them.
/// </summary>
public sealed class MetricsTrafficTests : IAsyncLifetime
{
    private SiloProcess _node = null!;

    public async Task InitializeAsync()
    {
        _node = SiloProcess.Start(new Dictionary<string, string>());
        await _node.WaitUntilReadyAsync();
    }

    public async Task DisposeAsync() => await _node.DisposeAsync();

    private async Task<PrometheusText> ScrapeAsync()
    {
        var response = await _node.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        return new PrometheusText(await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task TheBrokersTraffic_IsCountedUnderAwsNames_AndShadowRequestsByOutcome()
    {
        var before = await ScrapeAsync();
        var id = Ids.NewId("metrics");
        using var subscriber = await _node.ConnectAsync($"{id}-app", MqttProtocolVersion.V500);
        var received = 0;
        subscriber.ApplicationMessageReceivedAsync += _ =>
        {
            Interlocked.Increment(ref received);
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter($"dt/{id}/+", MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter($"cmd/{id}/#", MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());
        using var device = await _node.ConnectAsync(id);
        for (var i = 0; i < 5; i++)
        {
            await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"dt/{id}/telemetry").WithPayload($"{{\"n\":{i}}}")
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        await Eventually.True(() => Task.FromResult(Volatile.Read(ref received) == 5), "the subscriber to get the 5 messages");

        // A client id over AWS's 128 bytes: refused as a client error.
        using var tooLong = new MqttClientFactory().CreateMqttClient();
        var refused = await tooLong.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", _node.MqttPort).WithClientId(new string('x', 129)).WithProtocolVersion(MqttProtocolVersion.V500).Build());
        Assert.Equal(MqttClientConnectResultCode.ClientIdentifierNotValid, refused.ResultCode);

        // Shadows through the HTTP data plane: one accepted update, one refused (not JSON), one get of a missing shadow.
        Assert.True((await _node.Http.PostAsync($"/things/{id}/shadow", JsonContent.Create(new { state = new { reported = new { on = true } } }))).IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await _node.Http.PostAsync($"/things/{id}/shadow", new StringContent("{not json"))).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await _node.Http.GetAsync($"/things/{id}-none/shadow")).StatusCode);

        var after = await ScrapeAsync();
        double Delta(string name, params (string, string)[] labels) => after.Sum(name, labels) - before.Sum(name, labels);
        Assert.Equal(2, Delta("Connect_Success_total"));
        Assert.Equal(2, Delta("Subscribe_Success_total"));
        Assert.Equal(5, Delta("PublishIn_Success_total"));
        Assert.Equal(5, Delta("PublishOut_Success_total"));
        Assert.Equal(1, Delta("Connect_ClientError_total"));
        Assert.Equal(1, Delta("iot_mqtt_connects_refused_total", ("reason_code", "ClientIdentifierNotValid")));
        Assert.Equal(1, Delta("iot_shadow_requests_total", ("operation", "update"), ("result", "accepted")));
        Assert.Equal(1, Delta("iot_shadow_requests_total", ("operation", "update"), ("result", "rejected"), ("code", "400")));
        Assert.Equal(1, Delta("iot_shadow_requests_total", ("operation", "get"), ("result", "rejected"), ("code", "404")));

        // Orleans' own meters and the runtime's are in the same scrape.
        Assert.Contains(after.Names, n => n.StartsWith("orleans_", StringComparison.Ordinal));
        Assert.Contains(after.Names, n => n.StartsWith("dotnet_gc_", StringComparison.Ordinal));
    }
}
