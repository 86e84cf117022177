using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Sessions;

/// <summary>Sessions and wills across two nodes: a session resumes on any node, a will reaches every node.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ClusterSessionTests(TwoNodeFixture nodes)
{
    [Fact]
    public async Task SessionOfflineOnA_ResumesOnB_WithItsQueue_AndAReleasesIt()
    {
        var since = DateTime.UtcNow;
        var clientId = NewId("roam");
        var topic = $"cmd/{clientId}";
        var (onA, _, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await onA.SubscribeAsync(topic, MqttQualityOfServiceLevel.ExactlyOnce);
        await onA.DisconnectAndWaitOfflineAsync(nodes.A.Http, clientId);

        // Published on B while the session is offline on A: B forwards to A, A queues them.
        var publisher = await nodes.B.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, [1, 2], MqttQualityOfServiceLevel.ExactlyOnce);
        await Eventually.True(async () => (await nodes.B.Http.GetStringAsync($"/api/sessions/{clientId}")).Contains("\"queuedMessages\":2", StringComparison.Ordinal), "two messages queued");

        var (_, inbox, resumed) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.True(resumed.IsSessionPresent);
        Assert.Equal(["1", "2"], await inbox.WaitAsync(topic, 2, "the queue on the new node"));
        Assert.All(inbox.Messages, m => Assert.Equal(MqttQualityOfServiceLevel.ExactlyOnce, m.QualityOfServiceLevel));

        // The subscription lives on B now; A no longer holds the session, so nothing is queued twice.
        var publisherOnA = await nodes.A.ConnectAsync(NewId("pub"));
        await publisherOnA.PublishNumberedAsync(topic, [3]);
        await publisher.PublishNumberedAsync(topic, [4]);
        // A last message from each publisher: a copy of an earlier one would have come before it.
        await publisherOnA.PublishNumberedAsync(topic, [100]);
        await publisher.PublishNumberedAsync(topic, [200]);
        await inbox.WaitAsync(topic, 6, "live messages from both nodes");
        var payloads = inbox.Payloads(topic).Where(p => p is not ("100" or "200")).ToList();
        Assert.Equal(6, inbox.Payloads(topic).Count);
        Assert.Equal(["1", "2"], payloads.Take(2));
        Assert.Equal(["3", "4"], payloads.Skip(2).Order());   // two publishers: no order between them, each once
        nodes.A.AssertNoErrorsLogged(since);
        nodes.B.AssertNoErrorsLogged(since);
    }

    [Fact]
    public async Task MessageNotAcknowledgedBeforeTheConnectionDropped_IsDeliveredAgain_OnTheOtherNode()
    {
        var clientId = NewId("noack");
        var topic = $"cmd/{clientId}";
        var first = nodes.A.NewClient();
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        first.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;   // the device dies before it sends PUBACK
            seen.Enqueue(e.ApplicationMessage.ConvertPayloadToString());
            return Task.CompletedTask;
        };
        await first.ConnectAsync(nodes.A.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300).Build());
        await first.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await nodes.A.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, [1]);
        await Eventually.True(() => Task.FromResult(seen.Contains("1")), "the first delivery");
        first.Drop();
        await Eventually.True(async () => (await nodes.A.Http.GetStringAsync($"/api/sessions/{clientId}")).Contains("\"queuedMessages\":1", StringComparison.Ordinal), "the unacknowledged message queued");

        var (_, inbox, resumed) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.True(resumed.IsSessionPresent);
        Assert.Equal(["1"], await inbox.WaitAsync(topic, 1, "the message again"));
    }

    [Fact]
    public async Task MessagesHeldByTheClientsWindow_AreQueued_WhenItDrops_AndDeliveredOnTheOtherNode()
    {
        var clientId = NewId("window");
        var topic = $"cmd/{clientId}";
        var first = nodes.A.NewClient();
        var inFlight = 0;
        first.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;   // never acknowledges: 2 in flight, the rest held by the gateway
            Interlocked.Increment(ref inFlight);
            return Task.CompletedTask;
        };
        await first.ConnectAsync(nodes.A.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300).WithReceiveMaximum(2).Build());
        await first.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await nodes.A.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, [1, 2, 3, 4, 5]);
        await Eventually.True(() => Task.FromResult(Volatile.Read(ref inFlight) == 2), "the window of two delivered");
        first.Drop();
        await Eventually.True(async () => (await nodes.A.Http.GetStringAsync($"/api/sessions/{clientId}")).Contains("\"queuedMessages\":5", StringComparison.Ordinal), "all five queued");

        var (_, inbox, resumed) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.True(resumed.IsSessionPresent);
        Assert.Equal(["1", "2", "3", "4", "5"], await inbox.WaitAsync(topic, 5, "the in-flight and held messages, in order"));
    }

    [Fact]
    public async Task ResumingOnB_WhileConnectedOnA_TakesTheSessionOver()
    {
        var clientId = NewId("move");
        var topic = $"cmd/{clientId}";
        var (onA, _, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await onA.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);

        var (_, inbox, onB) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.True(onB.IsSessionPresent);
        await Eventually.True(() => Task.FromResult(!onA.IsConnected), "the connection on A to be closed");

        var publisher = await nodes.A.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, [1]);
        Assert.Equal(["1"], await inbox.WaitAsync(topic, 1, "the message on B"));
    }

    [Fact]
    public async Task WillOfAClientOnA_ReachesASubscriberOnB()
    {
        var topic = $"will/{NewId("t")}";
        var (watcher, inbox, _) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(NewId("watch")));
        await watcher.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var (device, _, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(NewId("dev")).WithWillTopic(topic).WithWillPayload("gone"));
        device.Drop();

        Assert.Equal(["gone"], await inbox.WaitAsync(topic, 1, "the will on the other node"));
    }

    [Fact]
    public async Task TakeoverOnAnotherNode_PublishesTheOldConnectionsWill_AsAwsDoes()
    {
        var topic = $"will/{NewId("t")}";
        var (watcher, inbox, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(NewId("watch")));
        var clientId = NewId("dup");
        await watcher.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await watcher.SubscribeAsync($"$aws/events/presence/disconnected/{clientId}", MqttQualityOfServiceLevel.AtLeastOnce);
        var since = DateTime.UtcNow;
        await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(clientId).WithWillTopic(topic).WithWillPayload("replaced"));
        await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(clientId));

        // Failed now and then in full runs (never in 25 runs of this collection, 400 takeovers under a CPU hog or 20
        // full runs since): the one way found to lose this will is node B not knowing the watcher's route yet (a route
        // broadcast that outlived Iot:Routing:BroadcastTimeout). If it fails again, the nodes' warnings say why.
        IReadOnlyList<string> will;
        try
        {
            will = await inbox.WaitAsync(topic, 1, "the will of the replaced connection");
        }
        catch (TimeoutException ex)
        {
            throw new TimeoutException($"{ex.Message}\nA: {string.Join("\n", nodes.A.Logs.Entries.Where(e => e.At >= since))}\nB: {string.Join("\n", nodes.B.Logs.Entries.Where(e => e.At >= since))}", ex);
        }

        Assert.Equal(["replaced"], will);
        // Node A publishes a will it owns before the connection's disconnected event: once that event is in, a
        // second will from A would be too.
        await inbox.WaitAsync($"$aws/events/presence/disconnected/{clientId}", 1, "the old connection's end on node A");
        Assert.Single(inbox.Payloads(topic));
    }
}
