using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Npgsql;
using OrleansIot.Grains.Abstractions.Analytics;
using OrleansIot.Grains.Analytics;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Analytics;

/// <summary>
/// What both analytics sinks must do (the embedded ring and PostgreSQL): writes idempotent by (message, rule),
/// buckets aligned to the epoch, the same aggregates, paths into the JSON, newest points first, nothing older than
/// the retention. Every time is taken from the store's own clock, a fake one, so the contract holds on any date.
/// </summary>
public abstract class TelemetryStoreContract
{
    /// <summary>The retention both stores are made with (the default).</summary>
    protected static readonly TimeSpan Retention = TimeSpan.FromDays(7);

    /// <summary>A store and the clock it measures the retention by.</summary>
    protected abstract Task<(ITelemetryStore Store, FakeTimeProvider Clock)> StoreAsync();

    internal static TelemetryRecord Record(string thing, DateTimeOffset at, string json, Guid? id = null, string rule = "r", string topic = "dt/x") =>
        new(thing, at, id ?? Guid.NewGuid(), rule, topic, Encoding.UTF8.GetBytes(json));

    /// <summary>An hour boundary a day before the clock's now: well inside the retention, and buckets align to it.</summary>
    private static DateTimeOffset HourADayAgo(TimeProvider clock)
    {
        var now = clock.GetUtcNow();
        return new DateTimeOffset(now.Year, now.Month, now.Day, now.Hour, 0, 0, TimeSpan.Zero).AddDays(-1);
    }

    private static TelemetryQuery Query(DateTimeOffset t0, string thing, string? path, TimeSpan bucket, TelemetryAggregate agg = TelemetryAggregate.Avg, string? topic = null) =>
        new(thing, topic, path?.Split('.'), t0.AddHours(-1), t0.AddHours(1), bucket, agg, 100);

    [Fact]
    public async Task Buckets_AggregateTheNumbersAtThePath_AndSkipEverythingElse()
    {
        var (store, clock) = await StoreAsync();
        var t0 = HourADayAgo(clock);
        var thing = Ids.NewId("t");
        await store.AppendAsync(
        [
            Record(thing, t0, """{"env":{"t":10}}"""),
            Record(thing, t0.AddSeconds(30), """{"env":{"t":20}}"""),
            Record(thing, t0.AddSeconds(59.999), """{"env":{"t":"hot"}}"""),   // not a number
            Record(thing, t0.AddMinutes(1), """{"env":{"t":-4.5}}"""),
            Record(thing, t0.AddMinutes(2), """{"other":1}"""),                // no such path
            Record(Ids.NewId("else"), t0, """{"env":{"t":1000}}"""),         // another thing
        ], default);

        var avg = await store.AggregateAsync(Query(t0, thing, "env.t", TimeSpan.FromMinutes(1)), default);
        Assert.Equal([(t0, 15.0, 2L), (t0.AddMinutes(1), -4.5, 1L)], avg.Select(b => (b.Start, b.Value, b.Count)));
        Assert.Equal([20.0, -4.5], (await store.AggregateAsync(Query(t0, thing, "env.t", TimeSpan.FromMinutes(1), TelemetryAggregate.Max), default)).Select(b => b.Value));
        Assert.Equal([10.0, -4.5], (await store.AggregateAsync(Query(t0, thing, "env.t", TimeSpan.FromMinutes(1), TelemetryAggregate.Min), default)).Select(b => b.Value));
        Assert.Equal([25.5], (await store.AggregateAsync(Query(t0, thing, "env.t", TimeSpan.FromHours(1), TelemetryAggregate.Sum), default)).Select(b => b.Value));
        Assert.Equal([3.0], (await store.AggregateAsync(Query(t0, thing, "env.t", TimeSpan.FromHours(1), TelemetryAggregate.Count), default)).Select(b => b.Value));
        Assert.Equal([5.0], (await store.AggregateAsync(Query(t0, thing, null, TimeSpan.FromHours(1), TelemetryAggregate.Count), default)).Select(b => b.Value));
    }

    [Fact]
    public async Task AMessageStoredTwice_IsOnePoint_ButTwoRulesMakeTwo()
    {
        var (store, clock) = await StoreAsync();
        var t0 = HourADayAgo(clock);
        var thing = Ids.NewId("t");
        var id = Guid.NewGuid();

        await store.AppendAsync([Record(thing, t0, """{"v":1}""", id)], default);
        await store.AppendAsync([Record(thing, t0, """{"v":1}""", id)], default);            // redelivered
        await store.AppendAsync([Record(thing, t0, """{"v":1}""", id, rule: "other")], default);

        var count = await store.AggregateAsync(Query(t0, thing, null, TimeSpan.FromHours(1), TelemetryAggregate.Count), default);
        Assert.Equal(2, Assert.Single(count).Count);
    }

    [Fact]
    public async Task Points_AreNewestFirst_FilteredByTopicAndTime_AndLimited()
    {
        var (store, clock) = await StoreAsync();
        var t0 = HourADayAgo(clock);
        var thing = Ids.NewId("t");
        await store.AppendAsync(
        [
            Record(thing, t0.AddSeconds(2), """{"v":{"a":[1,2]}}""", topic: "a"),
            Record(thing, t0.AddSeconds(1), """{"v":2}""", topic: "b"),
            Record(thing, t0.AddSeconds(3), """{"v":3}""", topic: "a"),
            Record(thing, t0.AddHours(-2), """{"v":0}""", topic: "a"),                        // before the range
            Record(thing, t0.AddSeconds(4), """{"w":4}""", topic: "a"),                        // no v
        ], default);

        var points = await store.PointsAsync(new TelemetryQuery(thing, "a", ["v"], t0.AddHours(-1), t0.AddHours(1), TimeSpan.Zero, TelemetryAggregate.Count, 10), default);
        Assert.Equal(["3", """{"a":[1,2]}"""], points.Select(p => p.Json.Replace(" ", "", StringComparison.Ordinal)));
        Assert.Equal(t0.AddSeconds(3), points[0].Time);
        var limited = await store.PointsAsync(new TelemetryQuery(thing, null, null, t0.AddHours(-1), t0.AddHours(1), TimeSpan.Zero, TelemetryAggregate.Count, 2), default);
        Assert.Equal(2, limited.Count);
        var element = await store.PointsAsync(new TelemetryQuery(thing, null, ["v", "a", "1"], t0.AddHours(-1), t0.AddHours(1), TimeSpan.Zero, TelemetryAggregate.Count, 10), default);
        Assert.Equal("2", Assert.Single(element).Json);
    }

    [Fact]
    public async Task PointsOlderThanTheRetention_AreGone_AndThoseInsideItStay()
    {
        var (store, clock) = await StoreAsync();
        var thing = Ids.NewId("t");
        var now = clock.GetUtcNow();
        await store.AppendAsync(
        [
            Record(thing, now - Retention - TimeSpan.FromHours(1), """{"v":1}"""),   // already past the retention
            Record(thing, now - Retention + TimeSpan.FromHours(1), """{"v":2}"""),   // an hour inside it
            Record(thing, now - TimeSpan.FromMinutes(1), """{"v":3}"""),
        ], default);

        async Task<string[]> ValuesAsync() => [.. (await store.PointsAsync(
            new TelemetryQuery(thing, null, ["v"], now.AddDays(-30), clock.GetUtcNow().AddHours(1), TimeSpan.Zero, TelemetryAggregate.Count, 10), default)).Select(p => p.Json)];
        async Task<long> CountAsync() => (await store.AggregateAsync(
            new TelemetryQuery(thing, null, null, now.AddDays(-30), clock.GetUtcNow().AddHours(1), TimeSpan.FromDays(100), TelemetryAggregate.Count, 10), default)).Sum(b => b.Count);

        Assert.Equal(["3", "2"], await ValuesAsync());
        Assert.Equal(2, await CountAsync());

        clock.Advance(TimeSpan.FromHours(2));   // the second point is now an hour past the retention

        Assert.Equal(["3"], await ValuesAsync());
        Assert.Equal(1, await CountAsync());
    }
}

[Collection(FakeClockClusterCollection.Name)]
public sealed class RingTelemetryStoreTests(FakeClockClusterFixture cluster) : TelemetryStoreContract
{
    protected override Task<(ITelemetryStore, FakeTimeProvider)> StoreAsync() =>
        Task.FromResult<(ITelemetryStore, FakeTimeProvider)>((new RingTelemetryStore(cluster.Grains), cluster.Clock));
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresTelemetryStoreTests(PostgresServer postgres) : TelemetryStoreContract
{
    internal static PostgresTelemetryStore Create(NpgsqlDataSource dataSource, TimeProvider clock, TimeSpan? retention = null) =>
        new(dataSource, Options.Create(new AnalyticsOptions { Retention = retention ?? Retention }), clock, NullLogger<PostgresTelemetryStore>.Instance);

    protected override async Task<(ITelemetryStore, FakeTimeProvider)> StoreAsync()
    {
        var clock = new FakeTimeProvider();
        return (Create(await postgres.CreateMigratedDataSourceAsync("telemetry"), clock), clock);
    }

    [Fact]
    public async Task Retention_DropsTheDaysBeforeTheCutoff_AndTheRowsOfOlderTimes()
    {
        var dataSource = await postgres.CreateMigratedDataSourceAsync("telemetry");
        var clock = new FakeTimeProvider();
        await using var store = Create(dataSource, clock, TimeSpan.FromDays(2));
        var now = clock.GetUtcNow();
        await store.AppendAsync(
        [
            Record("t", now.AddDays(-10), """{"v":1}"""),
            Record("t", now.AddDays(-5), """{"v":2}"""),
            Record("t", now.AddDays(-2).AddMinutes(-1), """{"v":3}"""),
            Record("t", now, """{"v":4}"""),
        ], default);
        Assert.True(await PartitionsAsync(dataSource) >= 3);

        var dropped = await store.ApplyRetentionAsync(default);

        Assert.True(dropped >= 2, $"dropped {dropped} partitions");
        await using var rows = dataSource.CreateCommand("SELECT array_agg((payload->>'v')::int ORDER BY ts) FROM iot_telemetry");
        var left = (int[])(await rows.ExecuteScalarAsync())!;
        Assert.Equal([4], left);
        await store.AppendAsync([Record("t", now.AddDays(-10), """{"v":5}""")], default);       // a dropped day comes back when written
    }

    private static async Task<long> PartitionsAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand("SELECT count(*) FROM pg_inherits WHERE inhparent = 'iot_telemetry'::regclass");
        return (long)(await command.ExecuteScalarAsync())!;
    }
}
