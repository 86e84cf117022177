using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Gateway;

/// <summary>MQTT 5 features a client relies on, on one node (cross-node properties are in the routing tests).</summary>
[Collection(NodeCollection.Name)]
public sealed class Mqtt5FeatureTests(NodeFixture node)
{
    [Theory]
    [InlineData(5, 30)]       // below AWS's minimum: raised
    [InlineData(60, 60)]      // within: kept
    [InlineData(0, 1200)]     // none: AWS's maximum
    public async Task Connack_AnnouncesTheServerKeepAliveAndLimits(int requested, int granted)
    {
        var (_, _, result) = await SessionClients.ConnectAsync(node, node.Options(NewId("ka")).WithKeepAlivePeriod(TimeSpan.FromSeconds(requested)));
        Assert.Equal((ushort)granted, result.ServerKeepAlive);
        Assert.Equal((ushort)8, result.TopicAliasMaximum);
        Assert.Equal((ushort)100, result.ReceiveMaximum);
        Assert.Equal(128u * 1024 + 64 * 1024, result.MaximumPacketSize);
        Assert.True(result.SharedSubscriptionAvailable);
        Assert.True(result.SubscriptionIdentifiersAvailable);
        Assert.True(result.RetainAvailable);
    }

    [Fact]
    public async Task SubscriptionIdentifier_ComesWithTheMessage()
    {
        var topic = $"sid/{NewId("t")}";
        var (subscriber, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("sub")));
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topic, MqttQualityOfServiceLevel.AtLeastOnce).WithSubscriptionIdentifier(7).Build());
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, [1]);
        await inbox.WaitAsync(topic, 1, "the message");
        Assert.Equal([7u], inbox.Messages.Single().SubscriptionIdentifiers);
    }

    [Fact]
    public async Task NoLocal_KeepsAClientsOwnMessagesFromIt()
    {
        var topic = $"nolocal/{NewId("t")}";
        var (client, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("self")));
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(f => f.WithTopic(topic).WithNoLocal().WithAtLeastOnceQoS()).Build());
        await client.PublishNumberedAsync(topic, [1]);
        var other = await node.ConnectAsync(NewId("other"));
        await other.PublishNumberedAsync(topic, [2]);
        // Its own message was acknowledged before the other was published: had it been delivered, it would be first.
        Assert.Equal(["2"], await inbox.WaitAsync(topic, 1, "the other client's message"));
    }

    [Fact]
    public async Task TopicAlias_FromTheClient_IsResolved()
    {
        var topic = $"alias/{NewId("t")}";
        var (subscriber, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("sub")));
        await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithTopicAlias(1).WithPayload("1").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopicAlias(1).WithPayload("2").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(["1", "2"], await inbox.WaitAsync(topic, 2, "both messages under the full topic"));
    }

    [Fact]
    public async Task ClientsMaximumPacketSize_MessagesTooLargeForItAreNotSent()
    {
        var topic = $"maxpacket/{NewId("t")}";
        var smallId = NewId("small");
        var (small, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(smallId).WithMaximumPacketSize(300));
        await small.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(new string('x', 1000)).Build());
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("fits").Build());
        // Same publisher, same subscriber: had the large one been sent, it would have come first.
        Assert.Equal(["fits"], await inbox.WaitAsync(topic, 1, "the message that fits"));
        Assert.True(small.IsConnected);
        // The drop and the delivery reach the thing with the gateway's usage flushes, maybe not the same one.
        var status = await Eventually.Get(() => node.GetThingAsync(smallId), s => s is { Usage.MessagesDropped: > 0, Usage.MessagesOut: > 0 }, "the large message counted as dropped for it, the small one as sent");
        Assert.Equal((1, 1), (status!.Usage.MessagesDropped, status.Usage.MessagesOut));
    }

    [Fact]
    public async Task FiltersBeyondEightInOneSubscribe_GetQuotaExceeded()
    {
        var client = await node.ConnectAsync(NewId("many"));
        var root = NewId("f");
        var options = new MqttClientSubscribeOptionsBuilder();
        for (var i = 0; i < 10; i++)
        {
            options.WithTopicFilter($"{root}/{i}");
        }

        var result = await client.SubscribeAsync(options.Build());
        Assert.All(result.Items.Take(8), i => Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS0, i.ResultCode));
        Assert.All(result.Items.Skip(8), i => Assert.Equal(MqttClientSubscribeResultCode.QuotaExceeded, i.ResultCode));

        // The count is per SUBSCRIBE: the next one may carry eight again.
        var next = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"{root}/8").WithTopicFilter($"{root}/9").Build());
        Assert.All(next.Items, i => Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS0, i.ResultCode));
    }

    [Fact]
    public async Task ClientsReceiveMaximum_LimitsUnacknowledgedDeliveries_TheRestFollowInOrder()
    {
        var topic = $"window/{NewId("t")}";
        var client = node.NewClient();
        var held = new System.Collections.Concurrent.ConcurrentQueue<MqttApplicationMessageReceivedEventArgs>();
        client.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;
            held.Enqueue(e);
            return Task.CompletedTask;
        };
        var clientId = NewId("slow");
        await client.ConnectAsync(node.Options(clientId).WithReceiveMaximum(5).Build());
        await client.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, Enumerable.Range(1, 20));

        // The gateway holds what is beyond the window: 15 held there and 5 received means no sixth is on its way.
        var connections = node.App.Services.GetRequiredService<OrleansIot.Gateway.Mqtt.LiveConnections>();
        await Eventually.True(() => Task.FromResult(held.Count >= 5 && connections.Find(clientId)?.Outbox is { Queued: 15, InFlight: 5 }), "the first window sent, the rest queued");
        Assert.Equal(5, held.Count);   // no more than the client's Receive Maximum unacknowledged

        // Acknowledge as they come: the rest follow, in publish order.
        var acknowledged = 0;
        await Eventually.True(async () =>
        {
            foreach (var e in held.Skip(acknowledged).ToList())
            {
                await e.AcknowledgeAsync(CancellationToken.None);
                acknowledged++;
            }

            return held.Count >= 20;
        }, "all twenty");
        Assert.Equal(Enumerable.Range(1, 20).Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)), held.Select(e => e.ApplicationMessage.ConvertPayloadToString()));
    }
}
