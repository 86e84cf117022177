using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Gateway.Routing;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Routing;

/// <summary>Publisher on node A, subscriber on node B: the two gateways behave as one broker.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ClusterRoutingTests(TwoNodeFixture nodes)
{
    private static async Task<ConcurrentQueue<MqttApplicationMessage>> SubscribeAsync(IMqttClient client, string filter, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce)
    {
        var received = new ConcurrentQueue<MqttApplicationMessage>();
        client.ApplicationMessageReceivedAsync += e =>
        {
            if (TopicMatches(filter, e.ApplicationMessage.Topic))
            {
                received.Enqueue(e.ApplicationMessage);
            }

            return Task.CompletedTask;
        };
        var result = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, qos).Build());
        Assert.All(result.Items, i => Assert.True((int)i.ResultCode <= 2, $"subscribe failed: {i.ResultCode}"));
        return received;
    }

    private static bool TopicMatches(string filter, string topic) => Grains.Abstractions.Routing.TopicFilter.Matches(filter, topic);

    private static MqttApplicationMessage Message(string topic, string payload, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(qos).Build();

    private static Task<T> Arrives<T>(ConcurrentQueue<T> queue, int count, string what) =>
        Eventually.Get(() => Task.FromResult(queue.Count >= count ? queue.First() : default), m => m is not null, what)!;

    private static ClusterRouter RouterOf(NodeFixture node) => node.App.Services.GetRequiredService<ClusterRouter>();

    [Theory]
    [InlineData(MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.AtMostOnce, MqttQualityOfServiceLevel.AtMostOnce)]   // downgraded to the subscription's QoS
    [InlineData(MqttQualityOfServiceLevel.ExactlyOnce, MqttQualityOfServiceLevel.AtLeastOnce, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttQualityOfServiceLevel.ExactlyOnce, MqttQualityOfServiceLevel.ExactlyOnce, MqttQualityOfServiceLevel.ExactlyOnce)]
    public async Task PublishOnA_ReachesWildcardSubscriberOnB_RightAfterSuback(MqttQualityOfServiceLevel publishQos, MqttQualityOfServiceLevel subscribeQos, MqttQualityOfServiceLevel expectedQos)
    {
        var root = NewId("r");
        var subscriber = await nodes.B.ConnectAsync(NewId("sub"));
        var received = await SubscribeAsync(subscriber, $"{root}/+/temp", subscribeQos);
        var publisher = await nodes.A.ConnectAsync(NewId("pub"));

        // No waiting between SUBACK and the publish: the route is known cluster-wide before SUBACK is sent.
        await publisher.PublishAsync(Message($"{root}/dev1/temp", "21.5", publishQos));

        var message = await Arrives(received, 1, "the message on the other node");
        Assert.Equal($"{root}/dev1/temp", message.Topic);
        Assert.Equal("21.5", message.ConvertPayloadToString());
        Assert.Equal(expectedQos, message.QualityOfServiceLevel);
    }

    [Fact]
    public async Task PerPublisherOrder_IsPreservedAcrossNodes()
    {
        var root = NewId("order");
        var subscriber = await nodes.B.ConnectAsync(NewId("sub"));
        var received = await SubscribeAsync(subscriber, $"{root}/#");
        var publishers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => nodes.A.ConnectAsync(NewId("pub"))));

        const int Count = 150;
        await Task.WhenAll(publishers.Select(async (p, i) =>
        {
            for (var n = 0; n < Count; n++)
            {
                await p.PublishAsync(Message($"{root}/p{i}", n.ToString(System.Globalization.CultureInfo.InvariantCulture), n % 3 == 0 ? MqttQualityOfServiceLevel.AtMostOnce : MqttQualityOfServiceLevel.AtLeastOnce));
            }
        }));

        await Eventually.True(() => Task.FromResult(received.Count >= 3 * Count), "all messages on the other node");
        for (var i = 0; i < 3; i++)
        {
            var sequence = received.Where(m => m.Topic == $"{root}/p{i}").Select(m => int.Parse(m.ConvertPayloadToString(), System.Globalization.CultureInfo.InvariantCulture)).ToList();
            Assert.Equal(Enumerable.Range(0, Count), sequence);
        }
    }

    [Fact]
    public async Task SubscribersOnBothNodes_EachGetExactlyOneCopy()
    {
        var root = NewId("both");
        var onA = await nodes.A.ConnectAsync(NewId("subA"));
        var onB = await nodes.B.ConnectAsync(NewId("subB"));
        var receivedA = await SubscribeAsync(onA, $"{root}/#");
        var receivedB = await SubscribeAsync(onB, $"{root}/#");
        var publisherOnB = await nodes.B.ConnectAsync(NewId("pub"));

        await publisherOnB.PublishAsync(Message($"{root}/x", "1"));
        await publisherOnB.PublishAsync(Message($"{root}/marker", "m"));

        await Eventually.True(() => Task.FromResult(receivedA.Any(m => m.Topic.EndsWith("/marker", StringComparison.Ordinal)) && receivedB.Any(m => m.Topic.EndsWith("/marker", StringComparison.Ordinal))), "the marker on both nodes");
        Assert.Single(receivedA, m => m.Topic == $"{root}/x");
        Assert.Single(receivedB, m => m.Topic == $"{root}/x");
    }

    [Fact]
    public async Task DollarTopics_AreNotMatchedByLeadingWildcards_AcrossNodes()
    {
        var root = NewId("dollar");
        var subscriber = await nodes.B.ConnectAsync(NewId("sub"));
        var wildcard = await SubscribeAsync(subscriber, $"+/{root}");
        var publisher = await nodes.A.ConnectAsync(NewId("pub"));

        await publisher.PublishAsync(Message($"$sys/{root}", "hidden"));
        await publisher.PublishAsync(Message($"a/{root}", "visible"));

        var first = await Arrives(wildcard, 1, "the visible message");
        Assert.Equal($"a/{root}", first.Topic);
        Assert.DoesNotContain(wildcard, m => m.Topic.StartsWith('$'));
        Assert.False(RouterOf(nodes.A).RoutesToAnotherNode($"$sys/{root}"));
    }

    [Fact]
    public async Task Unsubscribe_AndSessionEnd_RemoveTheRouteFromOtherNodes()
    {
        var root = NewId("unsub");
        var subscriber = await nodes.B.ConnectAsync(NewId("sub"));
        await SubscribeAsync(subscriber, $"{root}/a");
        await SubscribeAsync(subscriber, $"{root}/b");
        Assert.True(RouterOf(nodes.A).RoutesToAnotherNode($"{root}/a"));

        await subscriber.UnsubscribeAsync($"{root}/a");
        Assert.False(RouterOf(nodes.A).RoutesToAnotherNode($"{root}/a"));   // UNSUBACK came after the broadcast
        Assert.True(RouterOf(nodes.A).RoutesToAnotherNode($"{root}/b"));

        await subscriber.DisconnectAsync();
        await Eventually.True(() => Task.FromResult(!RouterOf(nodes.A).RoutesToAnotherNode($"{root}/b")), "the route to go with the session");
    }

    [Fact]
    public async Task SharedFilter_StaysRoutedWhileAnyLocalClientHoldsIt()
    {
        var root = NewId("shared");
        var first = await nodes.B.ConnectAsync(NewId("s1"));
        var second = await nodes.B.ConnectAsync(NewId("s2"));
        await SubscribeAsync(first, $"{root}/t");
        var stillReceiving = await SubscribeAsync(second, $"{root}/t");

        await first.DisconnectAsync();
        var publisher = await nodes.A.ConnectAsync(NewId("pub"));
        await publisher.PublishAsync(Message($"{root}/t", "for s2"));

        await Arrives(stillReceiving, 1, "the message for the remaining subscriber");
        Assert.True(RouterOf(nodes.A).RoutesToAnotherNode($"{root}/t"));
    }

    [Fact]
    public async Task Mqtt5Properties_TravelAcrossNodes()
    {
        var root = NewId("props");
        var subscriber = await nodes.B.ConnectAsync(NewId("sub"));
        var received = await SubscribeAsync(subscriber, $"{root}/req");
        var publisher = await nodes.A.ConnectAsync(NewId("pub"));

        await publisher.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic($"{root}/req").WithPayload("{}").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .WithContentType("application/json").WithResponseTopic($"{root}/resp").WithCorrelationData([1, 2, 3])
            .WithUserProperty("origin", new ReadOnlyMemory<byte>(Encoding.UTF8.GetBytes("node-a")))
            .WithPayloadFormatIndicator(MqttPayloadFormatIndicator.CharacterData).WithMessageExpiryInterval(600)
            .Build());

        var message = await Arrives(received, 1, "the message with its properties");
        Assert.Equal("application/json", message.ContentType);
        Assert.Equal($"{root}/resp", message.ResponseTopic);
        Assert.Equal(new byte[] { 1, 2, 3 }, message.CorrelationData);
        Assert.Equal(MqttPayloadFormatIndicator.CharacterData, message.PayloadFormatIndicator);
        Assert.Equal("node-a", Encoding.UTF8.GetString(Assert.Single(message.UserProperties).ValueBuffer.Span));
        Assert.InRange(message.MessageExpiryInterval, 1u, 600u);
    }

    [Fact]
    public async Task Mqtt311Clients_TalkAcrossNodes()
    {
        var root = NewId("v311");
        var subscriber = await nodes.B.ConnectAsync(NewId("sub"), MqttProtocolVersion.V311);
        var received = await SubscribeAsync(subscriber, $"{root}/#");
        var publisher = await nodes.A.ConnectAsync(NewId("pub"), MqttProtocolVersion.V311);

        await publisher.PublishAsync(Message($"{root}/x", "old but gold"));

        Assert.Equal("old but gold", (await Arrives(received, 1, "the 3.1.1 message")).ConvertPayloadToString());
    }

    [Fact]
    public async Task SubscriptionIdentifierAndNoLocal_HoldAcrossNodes()
    {
        var topic = $"x/{NewId("sid")}";
        var (subscriber, inbox, _) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(NewId("sub")));
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topic, MqttQualityOfServiceLevel.AtLeastOnce).WithSubscriptionIdentifier(42).Build());
        var (selfish, selfInbox, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(NewId("self")));
        await selfish.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(f => f.WithTopic(topic).WithNoLocal().WithAtLeastOnceQoS()).Build());

        await selfish.PublishNumberedAsync(topic, [1]);
        await inbox.WaitAsync(topic, 1, "the message on the other node");
        Assert.Equal([42u], inbox.Messages.Single().SubscriptionIdentifiers);

        // no-local: not back to its publisher. A later message from another client on the same node reaches it, and
        // its own would have come first.
        var other = await nodes.A.ConnectAsync(NewId("other"));
        await other.PublishNumberedAsync(topic, [2]);
        Assert.Equal(["2"], await selfInbox.WaitAsync(topic, 1, "the other client's message"));
    }
}
