using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using OrleansIot.Grains.Abstractions.Analytics;
using OrleansIot.Grains.Analytics;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Analytics;

/// <summary>
/// What both analytics sinks must do (the embedded ring and PostgreSQL): writes idempotent by (message, rule),
/// buckets aligned to the epoch, the same aggregates, paths into the JSON, newest points first.
/// </summary>
public abstract class TelemetryStoreContract
{
    protected abstract Task<ITelemetryStore> StoreAsync();

    private static readonly DateTimeOffset T0 = new(2026, 11, 27, 10, 0, 0, TimeSpan.Zero);

    internal static TelemetryRecord Record(string thing, DateTimeOffset at, string json, Guid? id = null, string rule = "r", string topic = "dt/x") =>
        new(thing, at, id ?? Guid.NewGuid(), rule, topic, Encoding.UTF8.GetBytes(json));

    private static TelemetryQuery Query(string thing, string? path, TimeSpan bucket, TelemetryAggregate agg = TelemetryAggregate.Avg, string? topic = null) =>
        new(thing, topic, path?.Split('.'), T0.AddHours(-1), T0.AddHours(1), bucket, agg, 100);

    [Fact]
    public async Task Buckets_AggregateTheNumbersAtThePath_AndSkipEverythingElse()
    {
        var store = await StoreAsync();
        var thing = Ids.NewId("t");
        await store.AppendAsync(
        [
            Record(thing, T0, """{"env":{"t":10}}"""),
            Record(thing, T0.AddSeconds(30), """{"env":{"t":20}}"""),
            Record(thing, T0.AddSeconds(59.999), """{"env":{"t":"hot"}}"""),   // not a number
            Record(thing, T0.AddMinutes(1), """{"env":{"t":-4.5}}"""),
            Record(thing, T0.AddMinutes(2), """{"other":1}"""),                // no such path
            Record(Ids.NewId("else"), T0, """{"env":{"t":1000}}"""),         // another thing
        ], default);

        var avg = await store.AggregateAsync(Query(thing, "env.t", TimeSpan.FromMinutes(1)), default);
        Assert.Equal([(T0, 15.0, 2L), (T0.AddMinutes(1), -4.5, 1L)], avg.Select(b => (b.Start, b.Value, b.Count)));
        Assert.Equal([20.0, -4.5], (await store.AggregateAsync(Query(thing, "env.t", TimeSpan.FromMinutes(1), TelemetryAggregate.Max), default)).Select(b => b.Value));
        Assert.Equal([10.0, -4.5], (await store.AggregateAsync(Query(thing, "env.t", TimeSpan.FromMinutes(1), TelemetryAggregate.Min), default)).Select(b => b.Value));
        Assert.Equal([25.5], (await store.AggregateAsync(Query(thing, "env.t", TimeSpan.FromHours(1), TelemetryAggregate.Sum), default)).Select(b => b.Value));
        Assert.Equal([3.0], (await store.AggregateAsync(Query(thing, "env.t", TimeSpan.FromHours(1), TelemetryAggregate.Count), default)).Select(b => b.Value));
        Assert.Equal([5.0], (await store.AggregateAsync(Query(thing, null, TimeSpan.FromHours(1), TelemetryAggregate.Count), default)).Select(b => b.Value));
    }

    [Fact]
    public async Task AMessageStoredTwice_IsOnePoint_ButTwoRulesMakeTwo()
    {
        var store = await StoreAsync();
        var thing = Ids.NewId("t");
        var id = Guid.NewGuid();

        await store.AppendAsync([Record(thing, T0, """{"v":1}""", id)], default);
        await store.AppendAsync([Record(thing, T0, """{"v":1}""", id)], default);            // redelivered
        await store.AppendAsync([Record(thing, T0, """{"v":1}""", id, rule: "other")], default);

        var count = await store.AggregateAsync(Query(thing, null, TimeSpan.FromHours(1), TelemetryAggregate.Count), default);
        Assert.Equal(2, Assert.Single(count).Count);
    }

    [Fact]
    public async Task Points_AreNewestFirst_FilteredByTopicAndTime_AndLimited()
    {
        var store = await StoreAsync();
        var thing = Ids.NewId("t");
        await store.AppendAsync(
        [
            Record(thing, T0.AddSeconds(2), """{"v":{"a":[1,2]}}""", topic: "a"),
            Record(thing, T0.AddSeconds(1), """{"v":2}""", topic: "b"),
            Record(thing, T0.AddSeconds(3), """{"v":3}""", topic: "a"),
            Record(thing, T0.AddHours(-2), """{"v":0}""", topic: "a"),                        // before the range
            Record(thing, T0.AddSeconds(4), """{"w":4}""", topic: "a"),                        // no v
        ], default);

        var points = await store.PointsAsync(new TelemetryQuery(thing, "a", ["v"], T0.AddHours(-1), T0.AddHours(1), TimeSpan.Zero, TelemetryAggregate.Count, 10), default);
        Assert.Equal(["3", """{"a":[1,2]}"""], points.Select(p => p.Json.Replace(" ", "", StringComparison.Ordinal)));
        Assert.Equal(T0.AddSeconds(3), points[0].Time);
        var limited = await store.PointsAsync(new TelemetryQuery(thing, null, null, T0.AddHours(-1), T0.AddHours(1), TimeSpan.Zero, TelemetryAggregate.Count, 2), default);
        Assert.Equal(2, limited.Count);
        var element = await store.PointsAsync(new TelemetryQuery(thing, null, ["v", "a", "1"], T0.AddHours(-1), T0.AddHours(1), TimeSpan.Zero, TelemetryAggregate.Count, 10), default);
        Assert.Equal("2", Assert.Single(element).Json);
    }
}

[Collection(ClusterCollection.Name)]
public sealed class RingTelemetryStoreTests(ClusterFixture cluster) : TelemetryStoreContract
{
    protected override Task<ITelemetryStore> StoreAsync() => Task.FromResult<ITelemetryStore>(new RingTelemetryStore(cluster.Grains));
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresTelemetryStoreTests(PostgresServer postgres) : TelemetryStoreContract
{
    internal static PostgresTelemetryStore Create(NpgsqlDataSource dataSource, TimeSpan? retention = null) =>
        new(dataSource, Options.Create(new AnalyticsOptions { Retention = retention ?? TimeSpan.FromDays(7) }), TimeProvider.System, NullLogger<PostgresTelemetryStore>.Instance);

    protected override async Task<ITelemetryStore> StoreAsync() => Create(await postgres.CreateMigratedDataSourceAsync("telemetry"));

    [Fact]
    public async Task Retention_DropsTheDaysBeforeTheCutoff_AndTheRowsOfOlderTimes()
    {
        var dataSource = await postgres.CreateMigratedDataSourceAsync("telemetry");
        await using var store = Create(dataSource, TimeSpan.FromDays(2));
        var now = DateTimeOffset.UtcNow;
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
