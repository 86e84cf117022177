using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Routing;
using OrleansIot.Tests.Sessions;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Gateway;

/// <summary>
/// MQTT 5 flow control and topic aliases in both directions, with the reason codes the specification names: read off
/// the wire by a raw client (real clients do not misbehave on purpose). AWS's per-second publish limit is off on this
/// node, so only the limit under test applies.
/// </summary>
public sealed class FlowControlTests(BackPressureNodeFixture node) : IClassFixture<BackPressureNodeFixture>
{
    private const byte TopicAliasInvalid = 0x94;
    private const byte ReceiveMaximumExceeded = 0x93;

    [Fact]
    public async Task TopicAliasZero_EndsTheConnectionWith0x94()
    {
        var (client, connack) = await RawMqtt5.ConnectAsync(node.MqttPort, NewId("alias0"));
        await using var _ = client;
        Assert.Equal(0, connack);
        await client.PublishAsync($"alias/{NewId("t")}", 0, 0, [0x23, 0, 0], "zero");
        Assert.Equal(TopicAliasInvalid, await client.DisconnectReasonAsync());
    }

    [Fact]
    public async Task TopicAliasAboveTheAnnouncedMaximum_EndsTheConnectionWith0x94_OneWithinIsResolved()
    {
        var topic = $"alias/{NewId("t")}";
        var (subscriber, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("sub")));
        await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var (client, _) = await RawMqtt5.ConnectAsync(node.MqttPort, NewId("alias9"));
        await using var __ = client;
        await client.PublishAsync(topic, 0, 0, [0x23, 0, 8], "8 is announced");
        await client.PublishAsync("", 0, 0, [0x23, 0, 8], "by alias");
        Assert.Equal(["8 is announced", "by alias"], await inbox.WaitAsync(topic, 2, "both, under the topic"));

        await client.PublishAsync(topic, 0, 0, [0x23, 0, 9], "9 is not");
        Assert.Equal(TopicAliasInvalid, await client.DisconnectReasonAsync());
        Assert.Contains(node.Logs.Entries, l => l.Message.Contains("topic alias maximum", StringComparison.Ordinal));
    }

    [Fact]
    public async Task MoreUnacknowledgedPublishesThanTheReceiveMaximum_EndsTheConnectionWith0x93()
    {
        var (client, _) = await RawMqtt5.ConnectAsync(node.MqttPort, NewId("recvmax"));
        await using var _ = client;
        var topic = $"recvmax/{NewId("t")}";

        // 100 QoS 2 publishes the client never releases: each answered with PUBREC, all still open.
        for (ushort id = 1; id <= 100; id++)
        {
            await client.PublishAsync(topic, 2, id, [], "open");
            Assert.Equal(0x50, (await client.ReadAsync()).Type);
        }

        // Completing one makes room for exactly one more.
        await client.ReleaseAsync(1);
        Assert.Equal(0x70, (await client.ReadAsync()).Type);   // PUBCOMP
        await client.PublishAsync(topic, 2, 101, [], "fits");
        Assert.Equal(0x50, (await client.ReadAsync()).Type);

        await client.PublishAsync(topic, 2, 102, [], "one too many");
        Assert.Equal(ReceiveMaximumExceeded, await client.DisconnectReasonAsync());
        Assert.Contains(node.Logs.Entries, l => l.Message.Contains("receive maximum", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ServerAssignedTopicAliases_ForAClientThatAllowsThem()
    {
        var root = $"salias/{NewId("t")}";
        var received = new System.Collections.Concurrent.ConcurrentQueue<MqttApplicationMessage>();
        var subscriber = node.NewClient();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        await subscriber.ConnectAsync(node.Options(NewId("sub")).WithTopicAliasMaximum(2).Build());
        await subscriber.SubscribeAsync($"{root}/#", MqttQualityOfServiceLevel.AtLeastOnce);

        var publisher = await node.ConnectAsync(NewId("pub"));
        string[] topics = [$"{root}/a", $"{root}/a", $"{root}/b", $"{root}/c", $"{root}/c", $"{root}/b"];
        foreach (var (topic, n) in topics.Select((t, i) => (t, i)))
        {
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(n.ToString(System.Globalization.CultureInfo.InvariantCulture)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        await Eventually.True(() => Task.FromResult(received.Count >= topics.Length), "every message");
        // MQTTnet's client hands aliases through unresolved: what the server put on the wire shows.
        var wire = received.Select(m => (Topic: m.Topic ?? "", m.TopicAlias)).ToList();
        Assert.Equal(
            [
                ($"{root}/a", (ushort)1),   // first use: topic and alias
                ("", (ushort)1),            // then the alias alone
                ($"{root}/b", (ushort)2),
                ($"{root}/c", (ushort)0),   // the client allows two: the third topic goes in full
                ($"{root}/c", (ushort)0),
                ("", (ushort)2),
            ],
            wire);
    }
}
