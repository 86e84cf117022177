using Orleans.Core.Internal;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Things;

[Collection(ClusterCollection.Name)]
public sealed class ThingGrainTests(ClusterFixture fixture)
{
    private static string NewThing() => Ids.NewId("thing");

    private static ConnectionOpened Opened(string clientId, string session) =>
        new(session, clientId, "127.0.0.1:5555", "node-a", 5, DateTimeOffset.UtcNow);

    [Fact]
    public void Cluster_HasTwoSilos() => Assert.Equal(2, fixture.Cluster.GetActiveSilos().Count());

    [Fact]
    public async Task GetStatus_OfUnknownThing_IsNull()
    {
        Assert.Null(await fixture.Grains.GetGrain<IThingGrain>(NewThing()).GetStatus());
    }

    [Fact]
    public async Task Connected_MakesTheThingKnownAndConnected()
    {
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);

        await thing.Connected(Opened(name, "s1"));

        var status = await thing.GetStatus();
        Assert.NotNull(status);
        Assert.Equal(name, status.ThingName);
        Assert.True(status.Connectivity.Connected);
        Assert.Equal("s1", status.Connectivity.SessionId);
        Assert.Equal("node-a", status.Connectivity.Node);
        Assert.Equal(5, status.Connectivity.ProtocolVersion);
    }

    [Fact]
    public async Task Disconnected_OfCurrentSession_RecordsReasonAndFinalUsage()
    {
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        await thing.Connected(Opened(name, "s1"));

        await thing.Disconnected(new ConnectionClosed("s1", DisconnectReasons.ClientInitiated, true, DateTimeOffset.UtcNow, new UsageDelta(3, 30, 1, 10)));

        var status = (await thing.GetStatus())!;
        Assert.False(status.Connectivity.Connected);
        Assert.Equal(DisconnectReasons.ClientInitiated, status.Connectivity.DisconnectReason);
        Assert.NotNull(status.Connectivity.LastDisconnectAt);
        Assert.Equal(new ThingUsage(3, 30, 1, 10), status.Usage);
    }

    [Fact]
    public async Task Disconnected_OfAnOlderSession_DoesNotDisconnectTheNewOne()
    {
        // A takeover: the new session's connect can reach the grain before the old session's disconnect.
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        await thing.Connected(Opened(name, "old"));
        await thing.Connected(Opened(name, "new"));

        await thing.Disconnected(new ConnectionClosed("old", DisconnectReasons.DuplicateClientId, false, DateTimeOffset.UtcNow, new UsageDelta(1, 5, 0, 0)));

        var status = (await thing.GetStatus())!;
        Assert.True(status.Connectivity.Connected);
        Assert.Equal("new", status.Connectivity.SessionId);
        Assert.Equal(1, status.Usage.MessagesIn);   // the old session's usage still counts
    }

    [Fact]
    public async Task RecordUsage_Accumulates()
    {
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        await thing.Connected(Opened(name, "s1"));

        await thing.RecordUsage(new UsageDelta(2, 20, 0, 0));
        await thing.RecordUsage(new UsageDelta(1, 10, 4, 40));
        await thing.RecordUsage(UsageDelta.None);

        Assert.Equal(new ThingUsage(3, 30, 4, 40), (await thing.GetStatus())!.Usage);
    }

    [Fact]
    public async Task Usage_SurvivesDeactivation()
    {
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        await thing.Connected(Opened(name, "s1"));
        await thing.RecordUsage(new UsageDelta(7, 70, 0, 0));

        await thing.Cast<IGrainManagementExtension>().DeactivateOnIdle();

        // The next call activates it again (maybe on the other silo) from storage.
        var status = await Eventually.Get(() => thing.GetStatus(), s => s?.Usage.MessagesIn == 7, "usage read back after deactivation");
        Assert.Equal(70, status!.Usage.BytesIn);
        Assert.True(status.Connectivity.Connected);
    }

    [Fact]
    public async Task ConnectionHistory_IsNewestFirst_ATakeoverIsRecordedAndCompletedByItsLateEnd_AndItIsBounded()
    {
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        var t0 = RecentHour();
        await thing.Connected(new ConnectionOpened("s1", name, "10.0.0.1:1", "node-a", 4, t0));
        await thing.Disconnected(new ConnectionClosed("s1", DisconnectReasons.ClientInitiated, true, t0.AddMinutes(1), UsageDelta.None));
        await thing.Connected(new ConnectionOpened("s2", name, "10.0.0.2:2", "node-b", 5, t0.AddMinutes(2)));
        await thing.Connected(new ConnectionOpened("s3", name, "10.0.0.3:3", "node-a", 5, t0.AddMinutes(3)));   // takes over s2

        var history = (await thing.GetStatus())!.History!;
        Assert.Equal(["s2", "s1"], history.Select(h => h.SessionId));
        Assert.Equal(new PastConnection("s1", t0, t0.AddMinutes(1), DisconnectReasons.ClientInitiated, "node-a", "10.0.0.1:1", 4), history[1]);
        Assert.Null(history[0].EndedAt);   // replaced; its end not reported yet

        await thing.Disconnected(new ConnectionClosed("s2", DisconnectReasons.DuplicateClientId, false, t0.AddMinutes(3), UsageDelta.None));
        history = (await thing.GetStatus())!.History!;
        Assert.Equal(new PastConnection("s2", t0.AddMinutes(2), t0.AddMinutes(3), DisconnectReasons.DuplicateClientId, "node-b", "10.0.0.2:2", 5), history[0]);
        Assert.True((await thing.GetStatus())!.Connectivity.Connected);   // s3 still is

        for (var i = 4; i < 20; i++)
        {
            await thing.Connected(new ConnectionOpened($"s{i}", name, null, "node-a", 5, t0.AddMinutes(i)));
            await thing.Disconnected(new ConnectionClosed($"s{i}", DisconnectReasons.ConnectionLost, false, t0.AddMinutes(i + 0.5), UsageDelta.None));
        }

        history = (await thing.GetStatus())!.History!;
        Assert.Equal(10, history.Count);   // Iot:Things:ConnectionHistory
        Assert.Equal("s19", history[0].SessionId);
        Assert.Equal("s10", history[9].SessionId);
    }

    [Fact]
    public async Task AnEndThatArrivesBeforeItsStart_LeavesTheThingDisconnected_AndTheHistoryWhole()
    {
        // A client that disconnects at once: the gateway reports its start and its end concurrently.
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        var t0 = RecentHour();
        await thing.Disconnected(new ConnectionClosed("quick", DisconnectReasons.ClientInitiated, true, t0.AddSeconds(1), new UsageDelta(1, 4, 0, 0)));
        await thing.Connected(new ConnectionOpened("quick", name, "10.0.0.9:9", "node-a", 4, t0));

        var status = (await thing.GetStatus())!;
        Assert.False(status.Connectivity.Connected);
        Assert.Equal(new PastConnection("quick", t0, t0.AddSeconds(1), DisconnectReasons.ClientInitiated, "node-a", "10.0.0.9:9", 4), Assert.Single(status.History!));
        Assert.Equal(1, status.Usage.MessagesIn);
    }

    [Fact]
    public async Task AConnectionToldOnlyAtItsEnd_IsRecordedWhole_AndCountsItsMinutes()
    {
        // The usual path: the gateway tells the thing of a connection once, when it ends, with its start.
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        var t0 = RecentHour();
        var opened = new ConnectionOpened("s1", name, "10.0.0.1:1", "node-a", 4, t0, VersionNumber: 1234);

        await thing.Disconnected(new ConnectionClosed("s1", DisconnectReasons.ConnectionLost, false, t0.AddMinutes(10), new UsageDelta(2, 20, 0, 0), opened));

        var status = (await thing.GetStatus())!;
        Assert.Equal(t0, status.FirstSeenAt);
        Assert.Equal(new ThingConnectivity(false, t0, "s1", "10.0.0.1:1", "node-a", 4, DisconnectReasons.ConnectionLost, t0.AddMinutes(10)), status.Connectivity);
        Assert.Equal(new PastConnection("s1", t0, t0.AddMinutes(10), DisconnectReasons.ConnectionLost, "node-a", "10.0.0.1:1", 4), Assert.Single(status.History!));
        Assert.Equal(2, status.Usage.MessagesIn);
        var days = await thing.GetDailyUsage(DateOnly.FromDateTime(t0.UtcDateTime), DateOnly.FromDateTime(t0.AddMinutes(10).UtcDateTime));
        Assert.Equal(10, days.Sum(d => d.ConnectedMinutes), 2);
    }

    [Fact]
    public async Task AnEndDeliveredAgain_IsCountedOnce()
    {
        // A kept end can reach its thing twice (its keeper went before it noted the delivery): usage, minutes and
        // history count it once, also when a later connection came between.
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        var t0 = RecentHour();
        var first = new ConnectionClosed("s1", DisconnectReasons.ServerInitiated, false, t0.AddMinutes(10), new UsageDelta(2, 20, 1, 5),
            new ConnectionOpened("s1", name, "10.0.0.1:1", "node-a", 4, t0));
        var second = new ConnectionClosed("s2", DisconnectReasons.ClientInitiated, true, t0.AddMinutes(30), new UsageDelta(1, 10, 0, 0),
            new ConnectionOpened("s2", name, "10.0.0.1:2", "node-b", 4, t0.AddMinutes(20)));

        await thing.Disconnected(first);
        await thing.Disconnected(first);
        await thing.Disconnected(second);
        await thing.Disconnected(first);

        var status = (await thing.GetStatus())!;
        Assert.Equal(new ThingUsage(3, 30, 1, 5, 0), status.Usage);
        Assert.Equal(["s2", "s1"], status.History!.Select(h => h.SessionId));
        Assert.Equal("s2", status.Connectivity.SessionId);
        var days = await thing.GetDailyUsage(DateOnly.FromDateTime(t0.UtcDateTime), DateOnly.FromDateTime(t0.AddMinutes(30).UtcDateTime));
        Assert.Equal(20, days.Sum(d => d.ConnectedMinutes), 2);
    }

    [Fact]
    public async Task AnAdoptersGuessedLoss_IsCorrectedByTheEndItsNodeRecorded_WithItsUsage()
    {
        // A node that stops hands its ends to keepers; another node adopting it may record the same connection as lost
        // first (it cannot know the usage). The stopping node's own end then corrects the reason and adds the usage,
        // once; a second guess changes nothing.
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        var t0 = RecentHour();
        var opened = new ConnectionOpened("s1", name, "10.0.0.1:1", "node-a", 4, t0);
        var guess = new ConnectionClosed("s1", DisconnectReasons.ConnectionLost, false, t0.AddMinutes(11), UsageDelta.None, opened);
        var own = new ConnectionClosed("s1", DisconnectReasons.ServerInitiated, false, t0.AddMinutes(10), new UsageDelta(3, 30, 1, 5), opened);

        await thing.Disconnected(guess);
        await thing.Disconnected(own);
        await thing.Disconnected(own);
        await thing.Disconnected(guess);

        var status = (await thing.GetStatus())!;
        Assert.Equal(DisconnectReasons.ServerInitiated, status.Connectivity.DisconnectReason);
        Assert.Equal(DisconnectReasons.ServerInitiated, Assert.Single(status.History!).DisconnectReason);
        Assert.Equal(new ThingUsage(3, 30, 1, 5, 0), status.Usage);
    }

    [Fact]
    public async Task EndsToldOutOfOrder_KeepTheLaterConnectionAsTheLastOne()
    {
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        var t0 = RecentHour();
        var first = new ConnectionOpened("s1", name, "10.0.0.1:1", "node-a", 4, t0);
        var second = new ConnectionOpened("s2", name, "10.0.0.2:2", "node-b", 5, t0.AddMinutes(2));

        // s2 took s1 over; s1's end (from its node) arrives after s2's.
        await thing.Disconnected(new ConnectionClosed("s2", DisconnectReasons.ClientInitiated, true, t0.AddMinutes(3), UsageDelta.None, second));
        await thing.Disconnected(new ConnectionClosed("s1", DisconnectReasons.DuplicateClientId, false, t0.AddMinutes(2), UsageDelta.None, first));

        var status = (await thing.GetStatus())!;
        Assert.Equal("s2", status.Connectivity.SessionId);
        Assert.Equal(DisconnectReasons.ClientInitiated, status.Connectivity.DisconnectReason);
        Assert.Equal(["s2", "s1"], status.History!.Select(h => h.SessionId));
        Assert.Equal(new PastConnection("s1", t0, t0.AddMinutes(2), DisconnectReasons.DuplicateClientId, "node-a", "10.0.0.1:1", 4), status.History![1]);
        Assert.Equal(t0, status.FirstSeenAt);
    }

    [Fact]
    public async Task AnOpenConnectionTheThingWasNotToldOf_IsAnsweredFromTheConnectionDirectory()
    {
        var name = NewThing();
        var thing = fixture.Grains.GetGrain<IThingGrain>(name);
        var t0 = RecentHour();
        var directory = fixture.Grains.GetGrain<IConnectionDirectoryGrain>(ConnectionDirectory.PartitionOf(name));
        var claim = await directory.Claim(name, new ClientConnection("s1", "node-a/0123abcd", t0, "10.0.0.1:1", 5), stored: false);

        var status = (await thing.GetStatus())!;
        Assert.Equal(t0, status.FirstSeenAt);
        Assert.Equal(new ThingConnectivity(true, t0, "s1", "10.0.0.1:1", "node-a", 5, null, null), status.Connectivity);
        Assert.Empty(status.History!);
        var days = await thing.GetDailyUsage(DateOnly.FromDateTime(t0.UtcDateTime), DateOnly.FromDateTime(DateTime.UtcNow));
        Assert.True(days.Sum(d => d.ConnectedMinutes) >= 59, "the open connection's minutes so far");

        // Its end reaches the thing before the directory lets it go (the gateway's order): the thing knows it ended.
        var opened = new ConnectionOpened("s1", name, "10.0.0.1:1", "node-a", 5, t0, claim.VersionNumber);
        await thing.Disconnected(new ConnectionClosed("s1", DisconnectReasons.ClientInitiated, true, t0.AddMinutes(30), UsageDelta.None, opened));
        Assert.False((await thing.GetStatus())!.Connectivity.Connected);
        await directory.Release([new ReleasedConnection(name, "s1")]);
        Assert.False((await thing.GetStatus())!.Connectivity.Connected);
    }

    /// <summary>
    /// Connection times an hour ago, to the second: the grain runs on the real clock (its usage days and their retention
    /// follow it), so the times it is given are recent ones, whatever today is.
    /// </summary>
    private static DateTimeOffset RecentHour() => DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeSeconds());
}
