using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Routing;

/// <summary>Shared subscriptions on one node: each message to one member of each group.</summary>
[Collection(NodeCollection.Name)]
public sealed class SharedSubscriptionTests(NodeFixture node)
{
    [Fact]
    public async Task EachMessageGoesToOneMemberOfEachGroup_AndToEveryPlainSubscriber()
    {
        var since = DateTime.UtcNow;
        var prefix = $"jobs/{NewId("q")}";
        var (a1, inA1, connack) = await SessionClients.ConnectAsync(node, node.Options(NewId("a1")));
        Assert.True(connack.SharedSubscriptionAvailable);
        var (a2, inA2, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("a2")));
        var (b1, inB1, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("b1")));
        var (plain, inPlain, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("plain")));
        await a1.SubscribeAsync($"$share/a/{prefix}/+", MqttQualityOfServiceLevel.AtLeastOnce);
        await a2.SubscribeAsync($"$share/a/{prefix}/+", MqttQualityOfServiceLevel.AtLeastOnce);
        await b1.SubscribeAsync($"$share/b/{prefix}/#", MqttQualityOfServiceLevel.AtMostOnce);
        await plain.SubscribeAsync($"{prefix}/+", MqttQualityOfServiceLevel.AtLeastOnce);

        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync($"{prefix}/x", Enumerable.Range(1, 20));

        await inPlain.WaitAsync(prefix, 20, "the plain subscriber");
        await inB1.WaitAsync(prefix, 20, "group b's only member");
        await Eventually.True(() => Task.FromResult(inA1.Payloads($"{prefix}/x").Count + inA2.Payloads($"{prefix}/x").Count >= 20), "group a");
        await publisher.PublishMarkersUntilEachReceivesAsync($"{prefix}/end", inA1, inA2);
        var groupA = inA1.Payloads($"{prefix}/x").Concat(inA2.Payloads($"{prefix}/x")).Select(int.Parse).Order().ToList();
        Assert.Equal(Enumerable.Range(1, 20), groupA);   // each once, none twice
        Assert.NotEmpty(inA1.Payloads($"{prefix}/x"));    // spread (all 20 to one member: p = 2^-19)
        Assert.NotEmpty(inA2.Payloads($"{prefix}/x"));
        Assert.All(inB1.Messages, m => Assert.Equal(MqttQualityOfServiceLevel.AtMostOnce, m.QualityOfServiceLevel));
        node.AssertNoErrorsLogged(since);
    }

    [Fact]
    public async Task Unsubscribe_LeavesTheGroup()
    {
        var prefix = $"jobs/{NewId("u")}";
        var (stays, inStays, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("stays")));
        var (leaves, inLeaves, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("leaves")));
        await stays.SubscribeAsync($"$share/g/{prefix}", MqttQualityOfServiceLevel.AtLeastOnce);
        await leaves.SubscribeAsync($"$share/g/{prefix}", MqttQualityOfServiceLevel.AtLeastOnce);
        await leaves.UnsubscribeAsync($"$share/g/{prefix}");

        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(prefix, Enumerable.Range(1, 10));
        Assert.Equal(10, (await inStays.WaitAsync(prefix, 10, "the remaining member")).Count);
        Assert.Empty(inLeaves.Payloads(prefix));
    }

    [Fact]
    public async Task OfflinePersistentMember_KeepsTheGroupsQos1Messages()
    {
        var prefix = $"jobs/{NewId("p")}";
        var memberId = NewId("member");
        var (member, _, _) = await SessionClients.ConnectAsync(node, node.Options(memberId).Persistent(cleanStart: true, expirySeconds: 300));
        await member.SubscribeAsync($"$share/workers/{prefix}", MqttQualityOfServiceLevel.AtLeastOnce);
        await member.DisconnectAndWaitOfflineAsync(node.Http, memberId);

        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(prefix, [1, 2, 3]);
        await Eventually.True(async () => (await node.Http.GetStringAsync($"/api/sessions/{memberId}")).Contains("\"queuedMessages\":3", StringComparison.Ordinal), "three messages queued");
        var (_, inbox, resumed) = await SessionClients.ConnectAsync(node, node.Options(memberId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.True(resumed.IsSessionPresent);
        Assert.Equal(["1", "2", "3"], await inbox.WaitAsync(prefix, 3, "the group's messages kept for the member"));

        // Back online: the shared subscription is live again.
        await publisher.PublishNumberedAsync(prefix, [4]);
        await inbox.WaitAsync(prefix, 4, "a live message");
    }

    [Theory]
    [InlineData("$share//a")]          // empty share name
    [InlineData("$share/g")]           // no filter
    [InlineData("$share/g+/a")]        // wildcard in the share name
    [InlineData("$share/g/")]          // empty filter
    public async Task MalformedSharedSubscription_IsRefusedWithTopicFilterInvalid(string filter)
    {
        var client = await node.ConnectAsync(NewId("bad"));
        var result = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter).Build());
        Assert.Equal(MqttClientSubscribeResultCode.TopicFilterInvalid, result.Items.Single().ResultCode);
    }
}

/// <summary>Shared subscriptions across two nodes: one group, members on both.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ClusterSharedSubscriptionTests(TwoNodeFixture nodes)
{
    [Fact]
    public async Task GroupWithMembersOnBothNodes_GetsEachMessageOnce_SpreadOverTheNodes()
    {
        var prefix = $"jobs/{NewId("c")}";
        var (onA, inA, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(NewId("wa")));
        var (onB, inB, _) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(NewId("wb")));
        await onA.SubscribeAsync($"$share/w/{prefix}/+", MqttQualityOfServiceLevel.ExactlyOnce);
        await onB.SubscribeAsync($"$share/w/{prefix}/+", MqttQualityOfServiceLevel.ExactlyOnce);

        var publisher = await nodes.A.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync($"{prefix}/t", Enumerable.Range(1, 20), MqttQualityOfServiceLevel.ExactlyOnce);

        await Eventually.True(() => Task.FromResult(inA.Payloads($"{prefix}/t").Count + inB.Payloads($"{prefix}/t").Count >= 20), "the group's messages");
        await publisher.PublishMarkersUntilEachReceivesAsync($"{prefix}/end", inA, inB);
        Assert.Equal(Enumerable.Range(1, 20), inA.Payloads($"{prefix}/t").Concat(inB.Payloads($"{prefix}/t")).Select(int.Parse).Order());
        Assert.NotEmpty(inB.Payloads($"{prefix}/t"));   // the member on the other node gets its share (p of none = 2^-20)
        Assert.NotEmpty(inA.Payloads($"{prefix}/t"));
    }

    [Fact]
    public async Task MessagesSpreadByMembers_NotByNodes()
    {
        // One member on A, three on B: each member should get about a quarter. Picking a node uniformly would give
        // A's lone member half (p of 85 or more out of 200 when fair: < 1e-6; of 20 or fewer: < 1e-4).
        var prefix = $"jobs/{NewId("w")}";
        var filter = $"$share/weighted/{prefix}/+";
        var (onA, inA, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(NewId("wa")));
        await onA.SubscribeAsync(filter, MqttQualityOfServiceLevel.AtLeastOnce);
        var onB = new List<Inbox>();
        for (var i = 0; i < 3; i++)
        {
            var (client, inbox, _) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(NewId($"wb{i}")));
            await client.SubscribeAsync(filter, MqttQualityOfServiceLevel.AtLeastOnce);
            onB.Add(inbox);
        }

        var publisher = await nodes.A.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync($"{prefix}/t", Enumerable.Range(1, 200));

        await Eventually.True(() => Task.FromResult(inA.Payloads($"{prefix}/t").Count + onB.Sum(b => b.Payloads($"{prefix}/t").Count) >= 200), "the group's messages");
        Assert.InRange(inA.Payloads($"{prefix}/t").Count, 20, 85);
    }
}
