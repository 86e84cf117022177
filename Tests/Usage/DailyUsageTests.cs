using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Usage;

/// <summary>A thing's usage per UTC day, on the grains' fake clock: what lands in which day, and what is kept.</summary>
[Collection(FakeClockClusterCollection.Name)]
public sealed class DailyUsageTests(FakeClockClusterFixture cluster)
{
    private static DateOnly Day(DateTimeOffset at) => DateOnly.FromDateTime(at.UtcDateTime);

    [Fact]
    public async Task UsageLandsInTheDayItHappened_AndAConnectionIsSplitAtMidnight()
    {
        var thing = cluster.Grains.GetGrain<IThingGrain>(Ids.NewId("daily"));
        var now = cluster.Clock.GetUtcNow();
        var midnight = new DateTimeOffset(now.UtcDateTime.Date.AddDays(1), TimeSpan.Zero);
        cluster.Clock.Advance(midnight - now - TimeSpan.FromMinutes(10));   // 23:50

        await thing.Connected(new ConnectionOpened("s1", "c", "127.0.0.1", "node", 5, cluster.Clock.GetUtcNow()));
        await thing.RecordUsage(new UsageDelta(MessagesIn: 3, BytesIn: 30, MessagesOut: 1, BytesOut: 7));
        cluster.Clock.Advance(TimeSpan.FromMinutes(30));                     // 00:20 the next day
        await thing.RecordUsage(new UsageDelta(MessagesIn: 2, BytesIn: 8, MessagesOut: 0, BytesOut: 0, MessagesDropped: 1));

        // Still connected: the open connection counts up to now, in both days.
        var (first, second) = (Day(midnight.AddDays(-1)), Day(midnight));
        var open = await thing.GetDailyUsage(first, second);
        Assert.Equal([10.0, 20.0], open.Select(d => d.ConnectedMinutes));

        await thing.Disconnected(new ConnectionClosed("s1", DisconnectReasons.ClientInitiated, true, cluster.Clock.GetUtcNow(), new UsageDelta(1, 4, 0, 0)));
        cluster.Clock.Advance(TimeSpan.FromHours(2));                        // no longer counted after the end

        var days = await thing.GetDailyUsage(first.AddDays(-1), second);
        Assert.Equal(3, days.Count);
        Assert.Equal(new DailyUsage(first.AddDays(-1).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture), 0, 0, 0, 0, 0, 0, 0), days[0]);
        Assert.Equal((3, 30, 1, 7, 0, 10.0), (days[1].MessagesIn, days[1].BytesIn, days[1].MessagesOut, days[1].BytesOut, days[1].MessagesDropped, days[1].ConnectedMinutes));
        Assert.Equal((3, 12, 0, 0, 1, 20.0), (days[2].MessagesIn, days[2].BytesIn, days[2].MessagesOut, days[2].BytesOut, days[2].MessagesDropped, days[2].ConnectedMinutes));

        // The totals since first seen agree with the days.
        var status = await thing.GetStatus();
        Assert.Equal((6, 42, 1, 7), (status!.Usage.MessagesIn, status.Usage.BytesIn, status.Usage.MessagesOut, status.Usage.BytesOut));
    }

    [Fact]
    public async Task DaysOlderThanTheRetention_AreDroppedAsNewDaysStart()
    {
        var thing = cluster.Grains.GetGrain<IThingGrain>(Ids.NewId("retained"));
        var start = Day(cluster.Clock.GetUtcNow());
        await thing.RecordUsage(new UsageDelta(1, 1, 0, 0));
        cluster.Clock.Advance(TimeSpan.FromDays(90));                         // Iot:Things:UsageRetentionDays = 90
        await thing.RecordUsage(new UsageDelta(1, 1, 0, 0));

        var days = await thing.GetDailyUsage(start, start.AddDays(90));
        Assert.Equal(0, days[0].MessagesIn);                                 // 91 days ago by now: gone
        Assert.Equal(1, days[^1].MessagesIn);
        Assert.Equal(2, (await thing.GetStatus())!.Usage.MessagesIn);         // the totals keep everything
    }
}
