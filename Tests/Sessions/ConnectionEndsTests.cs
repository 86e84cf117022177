using Orleans.Core.Internal;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Sessions;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Sessions;

/// <summary>
/// The keepers of connection ends (<see cref="IConnectionEndsGrain"/>), which a stopping node hands its connections'
/// ends to instead of activating every thing during its stop: each end reaches its thing once, a few at a time, also
/// after the keeper was deactivated.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ConnectionEndsTests(ClusterFixture fixture)
{
    [Fact]
    public async Task KeptEnds_ReachTheirThingsAFewAtATime_OnceEach_AlsoAfterTheKeeperWasDeactivated()
    {
        // A keeper of its own (the gateway's are 0..63), so no other test's ends are counted.
        var keeper = fixture.Grains.GetGrain<IConnectionEndsGrain>(Random.Shared.NextInt64(1_000, long.MaxValue));
        var t0 = DateTimeOffset.FromUnixTimeSeconds(DateTimeOffset.UtcNow.AddHours(-1).ToUnixTimeSeconds());
        var ends = Enumerable.Range(1, 40).Select(n =>
        {
            var name = Ids.NewId("kept");
            var opened = new ConnectionOpened($"s-{name}", name, "10.0.0.1:1", "node-a", 4, t0, VersionNumber: n);
            return new KeptEnd(name, new ConnectionClosed(opened.SessionId, DisconnectReasons.ServerInitiated, false, t0.AddMinutes(n), new UsageDelta(n, 10 * n, 1, 5), opened));
        }).ToList();

        await keeper.Keep(ends);
        await keeper.Keep(ends[..5]);   // kept again (a stopping node's batch sent twice): kept once

        // Not all at once: a tick records a batch, and the first comes Iot:Things:KeptEndsDelay (0.5 s here) later.
        var kept = await keeper.Count();
        Assert.InRange(kept, ends.Count - ConnectionEndsGrain.BatchSize, ends.Count);

        // Its state is stored: activated again, it goes on.
        await keeper.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        await Eventually.True(async () => await keeper.Count() == 0, "every kept end recorded on its thing");

        foreach (var end in ends)
        {
            var status = (await fixture.Grains.GetGrain<IThingGrain>(end.ClientId).GetStatus())!;
            Assert.Equal(new ThingUsage(end.Closed.FinalUsage.MessagesIn, end.Closed.FinalUsage.BytesIn, 1, 5), status.Usage);
            Assert.Equal(new PastConnection(end.Closed.SessionId, t0, end.Closed.At, DisconnectReasons.ServerInitiated, "node-a", "10.0.0.1:1", 4), Assert.Single(status.History!));
            Assert.False(status.Connectivity.Connected);
        }
    }
}
