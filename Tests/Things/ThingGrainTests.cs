using Orleans.Core.Internal;
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
}
