using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Sessions;

/// <summary>
/// The session's grain counts a client as connected on a node from its CONNECT on; when that node then has no such
/// connection (the CONNECT failed after attaching, or the connection ended), messages handed to it come back here and
/// are kept for the next connection, not lost.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class SessionGrainUndeliverableTests(ClusterFixture fixture)
{
    private static QueuedMessage Message(string topic) =>
        new(new ForwardedMessage(topic, [7], 1, "publisher", null, null, null, null, 0, 0, MessageId: Guid.NewGuid()), false, null, 0, default);

    private static SessionRequest Persistent => new(CleanStart: false, ExpirySeconds: 3600, Will: null, ProtocolVersion: 5, MaxQueuedMessages: 100);

    [Fact]
    public async Task MessagesTheNodeCouldNotHandToTheConnection_AreQueuedForTheNextOne()
    {
        var clientId = Ids.NewId("undeliverable");
        var grain = fixture.Grains.GetGrain<IClientSessionGrain>(clientId);
        await grain.Attach(new ClientConnection("s1", "node-a", DateTimeOffset.UtcNow), Persistent);   // the CONNECT that then failed on node-a

        var message = Message($"cmd/{clientId}");
        var (kept, online) = await grain.Undeliverable("node-a", [message]);

        Assert.True(kept);
        Assert.Null(online);
        var next = await grain.Attach(new ClientConnection("s2", "node-b", DateTimeOffset.UtcNow), Persistent);
        Assert.Equal([message.Message.MessageId], next.Queued.Select(q => q.Message.MessageId));
    }

    [Fact]
    public async Task WhenTheClientIsConnectedElsewhereNow_TheCallerIsToldWhere()
    {
        var clientId = Ids.NewId("undeliverable");
        var grain = fixture.Grains.GetGrain<IClientSessionGrain>(clientId);
        await grain.Attach(new ClientConnection("s1", "node-b", DateTimeOffset.UtcNow), Persistent);

        Assert.Equal((true, "node-b"), await grain.Undeliverable("node-a", [Message($"cmd/{clientId}")]));
    }

    [Fact]
    public async Task ACleanSessionsMessages_EndWithIt()
    {
        var clientId = Ids.NewId("undeliverable");
        var grain = fixture.Grains.GetGrain<IClientSessionGrain>(clientId);
        await grain.Attach(new ClientConnection("s1", "node-a", DateTimeOffset.UtcNow), Persistent with { CleanStart = true, ExpirySeconds = 0 });

        Assert.Equal((false, (string?)null), await grain.Undeliverable("node-a", [Message($"cmd/{clientId}")]));
    }

    [Fact]
    public async Task ADeadNodesReplayOfAMessageTheQueueHandedOver_IsNotDeliveredAgain_ButANewOneIs()
    {
        var clientId = Ids.NewId("handed-over");
        var topic = $"cmd/{clientId}";
        var grain = fixture.Grains.GetGrain<IClientSessionGrain>(clientId);
        await grain.Attach(new ClientConnection("s1", "node-a", DateTimeOffset.UtcNow), Persistent);
        await grain.Subscribed("s1", [new SessionSubscription("cmd/#", 1, false, false, 0)]);
        var queued = Message(topic);
        await grain.Undeliverable("node-a", [queued]);
        var resumed = await grain.Attach(new ClientConnection("s2", "node-b", DateTimeOffset.UtcNow), Persistent);
        Assert.Single(resumed.Queued);   // handed to the connection on node-b

        var fresh = Message(topic);
        var replay = await grain.Replay("node-dead", [queued.Message, fresh.Message]);

        Assert.Equal("node-b", replay.OnlineNodeId);
        Assert.Equal([fresh.Message.MessageId], replay.ForOnline.Select(m => m.Message.MessageId));
    }

    [Fact]
    public async Task AnAdoptionRetriedAfterTheClientReconnectedToTheAdopter_LeavesTheLiveConnectionAlone()
    {
        var clientId = Ids.NewId("readopted");
        var grain = fixture.Grains.GetGrain<IClientSessionGrain>(clientId);
        await grain.Attach(new ClientConnection("s1", "node-dead", DateTimeOffset.UtcNow), Persistent);
        Assert.NotNull(await grain.Adopt("node-dead", "node-b"));   // first try (it then failed part-way, on another grain)

        await grain.Attach(new ClientConnection("s2", "node-b", DateTimeOffset.UtcNow), Persistent);   // the device is back, on node-b
        Assert.Null(await grain.Adopt("node-dead", "node-b"));      // the retry

        Assert.Equal(new ClientConnection("s2", "node-b", default), (await grain.GetConnection())! with { Since = default });
        await grain.Subscribed("s2", [new SessionSubscription("cmd/#", 1, false, false, 0)]);
        var replay = await grain.Replay("node-dead", [Message($"cmd/{clientId}").Message]);
        Assert.Equal(("node-b", 1), (replay.OnlineNodeId, replay.ForOnline.Count));   // for the live connection, not queued behind it
    }
}
