using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Gateway.Mqtt;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Gateway;

/// <summary>A node with AWS-style connect-rate limits: 5 CONNECTs a second, 1 per client id.</summary>
public sealed class ThrottledNodeFixture : NodeFixture
{
    protected override IEnumerable<string> Settings => ["Iot:Limits:MaxConnectsPerSecond=5", "Iot:Limits:MaxConnectsPerSecondPerClientId=1"];
}

/// <summary>
/// Connect-rate limits (AWS: per account and per client id): over them a CONNECT is refused at once, MQTT 5 with 0x9F
/// and MQTT 3.1.1 with "server unavailable", with a <c>connect_failed</c> event saying THROTTLED; the rate comes back.
/// </summary>
public sealed class ConnectThrottleTests(ThrottledNodeFixture node) : IClassFixture<ThrottledNodeFixture>
{
    private static readonly string[] First = ["a", "b", "c", "d"];
    private static readonly string[] Later = ["a", "g", "h", "i"];

    [Fact]
    public void TheBucket_AllowsItsRateWithASecondsBurst_AndAClientIdItsOwn()
    {
        var clock = new FakeTimeProvider();
        var throttle = new ConnectThrottle(Options.Create(new LimitsOptions { MaxConnectsPerSecond = 3, MaxConnectsPerSecondPerClientId = 1 }), clock);
        Assert.Equal([ConnectThrottle.Verdict.Allowed, ConnectThrottle.Verdict.Allowed, ConnectThrottle.Verdict.Allowed, ConnectThrottle.Verdict.NodeRate],
            First.Select(throttle.Check));
        Assert.Equal(ConnectThrottle.Verdict.ClientIdRate, throttle.Check("a"));   // refused by its own rate first: no node token spent

        clock.Advance(TimeSpan.FromMilliseconds(400));   // 1.2 tokens back
        Assert.Equal(ConnectThrottle.Verdict.Allowed, throttle.Check("e"));
        Assert.Equal(ConnectThrottle.Verdict.NodeRate, throttle.Check("f"));

        clock.Advance(TimeSpan.FromSeconds(10));   // at most a second's worth is banked
        Assert.Equal(3, Later.Select(throttle.Check).Count(v => v == ConnectThrottle.Verdict.Allowed));

        var unlimited = new ConnectThrottle(Options.Create(new LimitsOptions()), clock);
        Assert.All(Enumerable.Range(0, 1000), _ => Assert.Equal(ConnectThrottle.Verdict.Allowed, unlimited.Check("same")));
    }

    [Fact]
    public async Task OverTheRates_ConnectsAreRefusedWithTheirReasonCodes_AndAThrottledEvent_ThenAcceptedAgain()
    {
        var root = NewId("storm");
        var events = new ConcurrentQueue<JsonNode>();
        using var watcher = await node.ConnectAsync($"{root}-watcher");
        watcher.ApplicationMessageReceivedAsync += e =>
        {
            events.Enqueue(JsonNode.Parse(e.ApplicationMessage.ConvertPayloadToString())!);
            return Task.CompletedTask;
        };
        await watcher.SubscribeAsync("$aws/events/presence/connect_failed/+", MqttQualityOfServiceLevel.AtLeastOnce);

        // One client id twice in a second: the second is refused by the client id's rate.
        using var first = await AcceptedAfterAWhileAsync($"{root}-same");
        var again = await node.NewClient().ConnectAsync(node.Options($"{root}-same").Build());
        Assert.Equal(MqttClientConnectResultCode.ConnectionRateExceeded, again.ResultCode);
        Assert.True(first.IsConnected);   // the connected one is not disturbed

        // Twenty devices at once, half of them MQTT 3.1.1: the node's rate lets some in and refuses the rest.
        var results = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
        {
            var version = i % 2 == 0 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311;
            var client = node.NewClient();
            var result = await client.ConnectAsync(node.Options($"{root}-{i}", version).Build());
            return (version, result.ResultCode, client);
        }));
        var accepted = results.Count(r => r.ResultCode == MqttClientConnectResultCode.Success);
        Assert.InRange(accepted, 1, 8);
        Assert.All(results.Where(r => r.ResultCode != MqttClientConnectResultCode.Success), r => Assert.Equal(
            r.version == MqttProtocolVersion.V500 ? MqttClientConnectResultCode.ConnectionRateExceeded : MqttClientConnectResultCode.ServerUnavailable, r.ResultCode));

        await Eventually.True(() => Task.FromResult(events.Count(e => (string?)e["connectFailureReason"] == "THROTTLED") >= 20 - accepted + 1),
            "a connect_failed event per refusal");
        Assert.Contains(events, e => (string?)e["clientId"] == $"{root}-same" && (string?)e["eventType"] == "connect_failed");

        // The rate comes back.
        using var later = await AcceptedAfterAWhileAsync($"{root}-later");
        foreach (var (_, _, client) in results)
        {
            client.Dispose();
        }
    }

    private async Task<IMqttClient> AcceptedAfterAWhileAsync(string clientId) =>
        await Eventually.Get(async () =>
        {
            var client = node.NewClient();
            if ((await client.ConnectAsync(node.Options(clientId).Build())).ResultCode == MqttClientConnectResultCode.Success)
            {
                return client;
            }

            client.Dispose();
            return null;
        }, c => c is not null, $"{clientId} to be let in") ?? throw new InvalidOperationException();
}
