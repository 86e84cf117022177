using System.Diagnostics;
using System.Collections.Concurrent;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;

namespace OrleansIot.Tests.Gateway;

/// <summary>A node with small limits, so the tests stay small.</summary>
public sealed class LimitedNodeFixture : NodeFixture
{
    protected override IEnumerable<string> Settings =>
    [
        "Iot:Limits:MaxClientIdBytes=24",
        "Iot:Limits:MaxPayloadBytes=1024",
        "Iot:Limits:MaxTopicBytes=64",
        "Iot:Limits:MaxTopicLevels=4",
        "Iot:Limits:MaxSubscriptionsPerConnection=3",
        "Iot:Limits:MaxPublishesPerSecond=20",
        "Iot:Limits:MaxBytesPerSecond=4096",
        "Iot:Sessions:MaxQueuedMessages=5",
    ];
}

public sealed class LimitsTests(LimitedNodeFixture node) : IClassFixture<LimitedNodeFixture>
{
    // Short: the client ids must fit this fixture's 24-byte limit.
    private static string NewId(string prefix) => Ids.NewId(prefix, randomChars: 8);

    private static MqttApplicationMessage Message(string topic, int payloadBytes, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(new byte[payloadBytes]).WithQualityOfServiceLevel(qos).Build();

    private void AssertLogged(string limit, string clientId) =>
        Assert.Contains(node.Logs.Entries, e => e.Message.Contains(clientId, StringComparison.Ordinal) && e.Message.Contains(limit, StringComparison.Ordinal));

    [Fact]
    public async Task ClientIdOverTheLimit_IsRefused()
    {
        var result = await node.NewClient().ConnectAsync(node.Options(new string('d', 25)).Build());
        Assert.Equal(MqttClientConnectResultCode.ClientIdentifierNotValid, result.ResultCode);
        Assert.Equal(MqttClientConnectResultCode.Success, (await node.NewClient().ConnectAsync(node.Options(new string('d', 24)).Build())).ResultCode);
    }

    [Fact]
    public async Task PayloadOverTheLimit_EndsTheConnection_AsClientError_AndIsNotDelivered()
    {
        var root = NewId("big");
        var subscriber = await node.ConnectAsync(NewId("sub"));
        var received = new ConcurrentQueue<MqttApplicationMessage>();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"{root}/#").Build());
        var deviceId = NewId("dev");
        var device = await node.ConnectAsync(deviceId);

        await device.PublishAsync(Message($"{root}/ok", 1024, MqttQualityOfServiceLevel.AtMostOnce));
        try
        {
            await device.PublishAsync(Message($"{root}/big", 1025));
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
            // the connection may close before the PUBACK would have come
        }

        var status = await Eventually.Get(() => node.GetThingAsync(deviceId), s => s is { Connectivity.Connected: false }, "the connection to be closed");
        Assert.Equal(DisconnectReasons.ClientError, status!.Connectivity.DisconnectReason);
        AssertLogged("payload size", deviceId);
        await Eventually.True(() => Task.FromResult(received.Any(m => m.Topic == $"{root}/ok")), "the message at the limit");
        Assert.DoesNotContain(received, m => m.Topic == $"{root}/big");
    }

    [Fact]
    public async Task TopicTooDeep_Mqtt5_GetsTopicNameInvalid_AndTheConnectionStays()
    {
        var deviceId = NewId("dev");
        var device = await node.ConnectAsync(deviceId);

        var tooDeep = await device.PublishAsync(Message("a/b/c/d/e", 1));
        var tooLong = await device.PublishAsync(Message(new string('t', 65), 1));
        var fine = await device.PublishAsync(Message("a/b/c/d", 1));

        Assert.Equal(MqttClientPublishReasonCode.TopicNameInvalid, tooDeep.ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.TopicNameInvalid, tooLong.ReasonCode);
        Assert.True(fine.IsSuccess);
        Assert.True(device.IsConnected);
        AssertLogged("topic levels", deviceId);
        AssertLogged("topic length", deviceId);
    }

    [Fact]
    public async Task TopicTooDeep_Mqtt311_ClosesTheConnection()
    {
        var deviceId = NewId("dev");
        var device = await node.ConnectAsync(deviceId, MqttProtocolVersion.V311);
        try
        {
            await device.PublishAsync(Message("a/b/c/d/e", 1));
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
        }

        var status = await Eventually.Get(() => node.GetThingAsync(deviceId), s => s is { Connectivity.Connected: false }, "the connection to be closed");
        Assert.Equal(DisconnectReasons.ClientError, status!.Connectivity.DisconnectReason);
    }

    [Fact]
    public async Task SubscriptionsPerConnection_OverTheLimit_GetQuotaExceeded_PerFilter()
    {
        var root = NewId("subs");
        var clientId = NewId("dev");
        var client = await node.ConnectAsync(clientId);
        var first = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"{root}/1").WithTopicFilter($"{root}/2").Build());
        Assert.All(first.Items, i => Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS0, i.ResultCode));

        // One SUBSCRIBE with two more filters while one place is left: the first fits, the second does not.
        var second = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"{root}/3").WithTopicFilter($"{root}/4").Build());
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS0, second.Items.Single(i => i.TopicFilter.Topic == $"{root}/3").ResultCode);
        Assert.Equal(MqttClientSubscribeResultCode.QuotaExceeded, second.Items.Single(i => i.TopicFilter.Topic == $"{root}/4").ResultCode);
        AssertLogged("subscriptions per connection", clientId);

        // Re-subscribing to a held filter is not a new subscription; unsubscribing frees a place.
        var again = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"{root}/1").Build());
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS0, again.Items.Single().ResultCode);
        await client.UnsubscribeAsync($"{root}/1");
        var freed = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"{root}/4").Build());
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS0, freed.Items.Single().ResultCode);
    }

    [Fact]
    public async Task FilterTooLong_GetsTopicFilterInvalid()
    {
        var client = await node.ConnectAsync(NewId("dev"));
        var result = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(new string('f', 65)).Build());
        Assert.Equal(MqttClientSubscribeResultCode.TopicFilterInvalid, result.Items.Single().ResultCode);
    }

    [Fact]
    public async Task PublishRateOverTheLimit_Mqtt5_GetsQuotaExceeded_AndTheExcessIsNotDelivered()
    {
        var topic = $"{NewId("rate")}/t";
        var subscriber = await node.ConnectAsync(NewId("sub"));
        var received = new ConcurrentQueue<string>();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage.Topic);
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topic, MqttQualityOfServiceLevel.AtLeastOnce).Build());
        var clientId = NewId("dev");
        var device = await node.ConnectAsync(clientId);

        // All 60 in flight at once: awaiting each PUBACK before the next publish fell under 20 per second when the
        // machine was busy, and then no publish was over the limit.
        var started = Stopwatch.StartNew();
        var results = (await Task.WhenAll(Enumerable.Range(0, 60).Select(_ => device.PublishAsync(Message(topic, 1))))).Select(r => r.ReasonCode).ToList();

        var seconds = (int)Math.Ceiling(started.Elapsed.TotalSeconds) + 1;
        var accepted = results.Count(r => r is MqttClientPublishReasonCode.Success or MqttClientPublishReasonCode.NoMatchingSubscribers);
        Assert.Contains(MqttClientPublishReasonCode.QuotaExceeded, results);
        Assert.InRange(accepted, 20, 20 * seconds);   // 20 per second, in whichever seconds the burst spanned
        Assert.True(device.IsConnected);              // AWS discards the excess; the connection stays
        await Eventually.True(() => Task.FromResult(received.Count == accepted), "exactly the accepted messages");
        AssertLogged("publishes per second", clientId);
    }

    [Fact]
    public async Task ThroughputOverTheLimit_IsDelayed_NotRefused()
    {
        var clientId = NewId("dev");
        var device = await node.ConnectAsync(clientId);
        var started = Stopwatch.StartNew();
        for (var i = 0; i < 9; i++)
        {
            // 9 x 1000 bytes at 4096 bytes per second: held until at least two more seconds have begun.
            Assert.True((await device.PublishAsync(Message($"{NewId("tp")}/t", 1000))).IsSuccess);
        }

        Assert.True(started.Elapsed >= TimeSpan.FromSeconds(1), "the excess was not delayed");
        AssertLogged("bytes per second", clientId);
    }

    [Fact]
    public async Task OfflineQueueOverTheLimit_DropsTheOldest_AndSaysSoWhenTheClientReturns()
    {
        var clientId = NewId("q");
        var topic = $"{NewId("cmd")}/t";
        var options = node.Options(clientId).WithCleanStart(true).WithSessionExpiryInterval(300);
        var device = node.NewClient();
        await device.ConnectAsync(options.Build());
        await device.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topic, MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await device.DisconnectAndWaitOfflineAsync(node.Http, clientId);

        var publisher = await node.ConnectAsync(NewId("pub"));
        for (var i = 1; i <= 8; i++)
        {
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(i.ToString(System.Globalization.CultureInfo.InvariantCulture)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        await Eventually.True(async () => (await node.Http.GetStringAsync($"/api/sessions/{clientId}")).Contains("\"droppedMessages\":3", StringComparison.Ordinal), "three dropped");
        var resumed = node.NewClient();
        var received = new ConcurrentQueue<string>();
        resumed.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage.ConvertPayloadToString());
            return Task.CompletedTask;
        };
        await resumed.ConnectAsync(node.Options(clientId).WithCleanStart(false).WithSessionExpiryInterval(300).Build());
        await Eventually.True(() => Task.FromResult(received.Count >= 5), "the five newest");
        Assert.Equal(["4", "5", "6", "7", "8"], received);
        Assert.Contains(node.Logs.Entries, e => e.Message.Contains(clientId, StringComparison.Ordinal) && e.Message.Contains("dropped", StringComparison.Ordinal));
    }
}
