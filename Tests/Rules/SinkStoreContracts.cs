using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using OrleansIot.Grains.Abstractions.Analytics;
using OrleansIot.Grains.Analytics;
using OrleansIot.Grains.Queues;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Rules;

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

/// <summary>What both queue stores must do: ids stored once, oldest first, visibility, receipts, counts.</summary>
public abstract class QueueStoreContract
{
    protected abstract Task<IQueueStore> StoreAsync();

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task Messages_AreReceivedOldestFirst_HiddenWhileInFlight_AndDeletedOnlyWithTheLatestReceipt()
    {
        var store = await StoreAsync();
        var queue = Ids.NewId("q");
        var ids = Enumerable.Range(0, 3).Select(_ => Guid.NewGuid()).ToList();
        await store.SendAsync([.. ids.Select((id, i) => new QueueItem(queue, id, Bytes($"m{i}")))]);
        await store.SendAsync([new QueueItem(queue, ids[0], Bytes("m0 again"))]);       // the same id: stored once

        Assert.Equal(new(3, 0), await store.StatsAsync(queue));
        // Long enough to check the counts under a loaded machine; short enough to wait for its end below.
        var first = await store.ReceiveAsync(queue, 2, TimeSpan.FromSeconds(2));
        Assert.Equal(["m0", "m1"], first.Select(m => Encoding.UTF8.GetString(m.Body)));
        Assert.Equal(ids[..2], first.Select(m => m.MessageId));
        var second = await store.ReceiveAsync(queue, 10, TimeSpan.FromSeconds(30));
        Assert.Equal(["m2"], second.Select(m => Encoding.UTF8.GetString(m.Body)));
        Assert.Equal(new(0, 3), await store.StatsAsync(queue));
        Assert.Equal(1, await store.DeleteAsync(queue, [first[0].ReceiptHandle, "not-a-receipt"]));

        // m1's visibility ends: it comes back with a new receipt; the old one deletes nothing.
        var again = await Eventually.Get(() => store.ReceiveAsync(queue, 10, TimeSpan.FromSeconds(30)), m => m.Count > 0, "m1 again");
        Assert.Equal(["m1"], again.Select(m => Encoding.UTF8.GetString(m.Body)));
        Assert.Equal(2, again[0].ReceiveCount);
        Assert.Equal(0, await store.DeleteAsync(queue, [first[1].ReceiptHandle]));
        Assert.Equal(2, await store.DeleteAsync(queue, [again[0].ReceiptHandle, second[0].ReceiptHandle]));
        Assert.Equal(new(0, 0), await store.StatsAsync(queue));
        Assert.Empty(await store.ReceiveAsync(Ids.NewId("empty"), 10, TimeSpan.FromSeconds(1)));
    }
}

[Collection(ClusterCollection.Name)]
public sealed class RingTelemetryStoreTests(ClusterFixture cluster) : TelemetryStoreContract
{
    protected override Task<ITelemetryStore> StoreAsync() => Task.FromResult<ITelemetryStore>(new RingTelemetryStore(cluster.Grains));
}

[Collection(ClusterCollection.Name)]
public sealed class MemoryQueueStoreTests(ClusterFixture cluster) : QueueStoreContract
{
    protected override Task<IQueueStore> StoreAsync() => Task.FromResult<IQueueStore>(new MemoryQueueStore(cluster.Grains));
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresQueueStoreTests(PostgresServer postgres) : QueueStoreContract
{
    protected override async Task<IQueueStore> StoreAsync() => new PostgresQueueStore(await PostgresSinks.DataSourceAsync(postgres));
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresTelemetryStoreTests(PostgresServer postgres) : TelemetryStoreContract
{
    internal static PostgresTelemetryStore Create(NpgsqlDataSource dataSource, TimeSpan? retention = null) =>
        new(dataSource, Options.Create(new AnalyticsOptions { Retention = retention ?? TimeSpan.FromDays(7) }), TimeProvider.System, NullLogger<PostgresTelemetryStore>.Instance);

    protected override async Task<ITelemetryStore> StoreAsync() => Create(await PostgresSinks.DataSourceAsync(postgres));

    [Fact]
    public async Task Retention_DropsTheDaysBeforeTheCutoff_AndTheRowsOfOlderTimes()
    {
        var dataSource = await PostgresSinks.DataSourceAsync(postgres);
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

internal static class PostgresSinks
{
    /// <summary>A migrated database (one per call: partition and queue tests must not see each other's rows).</summary>
    public static async Task<NpgsqlDataSource> DataSourceAsync(PostgresServer postgres)
    {
        var dataSource = NpgsqlDataSource.Create(await postgres.CreateDatabaseAsync("sinks"));
        await new PostgresSchema(dataSource, NullLogger<PostgresSchema>.Instance).MigrateAsync(CancellationToken.None);
        return dataSource;
    }
}
