using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using NpgsqlTypes;
using OrleansIot.Grains.Abstractions.Analytics;
using OrleansIot.Grains.Analytics;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// The analytics sink in <c>iot_telemetry</c> (deploy/postgres/005), partitioned by UTC day. Appends are
/// group-committed multi-row inserts that ignore rows already stored (a redelivered message); the partition of a
/// day is created before the first write into it. Queries aggregate in PostgreSQL (<c>date_bin</c> from the Unix
/// epoch). Queries never return points older than the retention; the sweep that reclaims their space runs at start
/// and then hourly, so what a query sees does not depend on when it last ran (as in the embedded ring).
/// </summary>
internal sealed partial class PostgresTelemetryStore : ITelemetryStore, IHostedService, IAsyncDisposable
{
    private static readonly TimeSpan RetentionEvery = TimeSpan.FromHours(1);

    private readonly NpgsqlDataSource _dataSource;
    private readonly IOptions<AnalyticsOptions> _options;
    private readonly TimeProvider _time;
    private readonly ILogger<PostgresTelemetryStore> _logger;
    private readonly GroupCommit<TelemetryRecord> _commit;
    private readonly HashSet<DateOnly> _partitions = [];
    private readonly CancellationTokenSource _stopping = new();
    private Task _retention = Task.CompletedTask;

    public PostgresTelemetryStore(NpgsqlDataSource dataSource, IOptions<AnalyticsOptions> options, TimeProvider time, ILogger<PostgresTelemetryStore> logger)
    {
        _dataSource = dataSource;
        _options = options;
        _time = time;
        _logger = logger;
        _commit = new GroupCommit<TelemetryRecord>("telemetry", WriteAsync, maxItems: 4096, writers: 2);
    }

    public Task AppendAsync(IReadOnlyList<TelemetryRecord> records, CancellationToken cancellationToken) => _commit.AddAsync(records);

    public async Task<IReadOnlyList<TelemetryBucket>> AggregateAsync(TelemetryQuery query, CancellationToken cancellationToken)
    {
        var countPoints = query.Aggregate == TelemetryAggregate.Count && query.Path is null;
        var value = query.Aggregate switch
        {
            TelemetryAggregate.Avg => "avg((payload #> @path)::float8)",
            TelemetryAggregate.Min => "min((payload #> @path)::float8)",
            TelemetryAggregate.Max => "max((payload #> @path)::float8)",
            TelemetryAggregate.Sum => "sum((payload #> @path)::float8)",
            _ => "count(*)::float8",
        };
        await using var command = _dataSource.CreateCommand($"""
            SELECT date_bin(@bucket, ts, '1970-01-01 00:00:00+00') AS b, {value}, count(*)
              FROM iot_telemetry
             WHERE {Where(countPoints ? "" : "AND jsonb_typeof(payload #> @path) = 'number'")}
             GROUP BY b ORDER BY b
            """);
        Bind(command, query);
        command.Parameters.AddWithValue("bucket", query.Bucket);
        var buckets = new List<TelemetryBucket>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            buckets.Add(new TelemetryBucket(reader.GetFieldValue<DateTimeOffset>(0), reader.GetDouble(1), reader.GetInt64(2)));
        }

        return buckets;
    }

    public async Task<IReadOnlyList<TelemetryPoint>> PointsAsync(TelemetryQuery query, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand($"""
            SELECT ts, topic, rule_name, (payload #> @path)::text
              FROM iot_telemetry
             WHERE {Where("AND jsonb_typeof(payload #> @path) IS DISTINCT FROM 'null' AND payload #> @path IS NOT NULL")}
             ORDER BY ts DESC LIMIT @limit
            """);
        Bind(command, query);
        command.Parameters.AddWithValue("limit", query.Limit);
        var points = new List<TelemetryPoint>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            points.Add(new TelemetryPoint(reader.GetFieldValue<DateTimeOffset>(0), reader.GetString(1), reader.GetString(2), reader.GetString(3)));
        }

        return points;
    }

    /// <summary>Applies the retention now: drops the partitions of days before the cut-off and deletes older rows.</summary>
    public async Task<int> ApplyRetentionAsync(CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand("SELECT iot_telemetry_drop_before(@cutoff)");
        command.Parameters.AddWithValue("cutoff", _time.GetUtcNow() - _options.Value.Retention);
        var dropped = (int)(await command.ExecuteScalarAsync(cancellationToken))!;
        lock (_partitions)
        {
            _partitions.Clear();   // dropped ones must be created again if ever written (cheap: one call per day)
        }

        return dropped;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        _retention = RetentionLoopAsync(_stopping.Token);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        await _retention;
    }

    public async ValueTask DisposeAsync()
    {
        await _commit.DisposeAsync();
        _stopping.Dispose();
    }

    private static string Where(string extra) =>
        $"thing_name = @thing AND ts >= @from AND ts < @to AND (@topic::text IS NULL OR topic = @topic) {extra}";

    private void Bind(NpgsqlCommand command, TelemetryQuery query)
    {
        var cutoff = _time.GetUtcNow() - _options.Value.Retention;
        command.Parameters.AddWithValue("thing", query.ThingName);
        command.Parameters.AddWithValue("from", query.From > cutoff ? query.From : cutoff);
        command.Parameters.AddWithValue("to", query.To);
        command.Parameters.Add(new NpgsqlParameter("topic", NpgsqlDbType.Text) { Value = (object?)query.Topic ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("path", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = query.Path?.ToArray() ?? [] });
    }

    private async Task RetentionLoopAsync(CancellationToken cancellationToken)
    {
        using var timer = new PeriodicTimer(RetentionEvery, _time);
        do
        {
            try
            {
                var dropped = await ApplyRetentionAsync(cancellationToken);
                if (dropped > 0)
                {
                    LogDropped(_logger, dropped, _options.Value.Retention);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogRetentionFailed(_logger, ex);
            }
        }
        while (await WaitAsync(timer, cancellationToken));
    }

    private static async Task<bool> WaitAsync(PeriodicTimer timer, CancellationToken cancellationToken)
    {
        try
        {
            return await timer.WaitForNextTickAsync(cancellationToken);
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private async Task WriteAsync(List<TelemetryRecord> records)
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        foreach (var day in records.Select(r => DateOnly.FromDateTime(r.Time.UtcDateTime)).Distinct())
        {
            bool known;
            lock (_partitions)
            {
                known = _partitions.Contains(day);
            }

            if (!known)
            {
                await using var ensure = new NpgsqlCommand("SELECT iot_telemetry_ensure_partition(@day)", connection);
                ensure.Parameters.AddWithValue("day", day);
                await ensure.ExecuteNonQueryAsync();
                lock (_partitions)
                {
                    _partitions.Add(day);
                }
            }
        }

        var n = records.Count;
        var things = new string[n];
        var times = new DateTimeOffset[n];
        var ids = new Guid[n];
        var rules = new string[n];
        var topics = new string[n];
        var payloads = new string[n];
        for (var i = 0; i < n; i++)
        {
            var r = records[i];
            (things[i], times[i], ids[i], rules[i], topics[i], payloads[i]) = (r.ThingName, r.Time, r.MessageId, r.RuleName, r.Topic, Encoding.UTF8.GetString(r.Json));
        }

        // Committed without waiting for the WAL flush: the stream event that carried these messages is confirmed
        // (deleted) later by a synchronous commit in the same database, and WAL is flushed in order, so that
        // confirmation is durable only with these rows; if the database crashes first, the event is delivered
        // again and the rows are written again (idempotent). Saves a disk flush per write on the hot path.
        await using var transaction = await connection.BeginTransactionAsync();
        await using var batch = new NpgsqlBatch(connection, transaction);
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SET LOCAL synchronous_commit = off"));
        var insert = new NpgsqlBatchCommand("""
            INSERT INTO iot_telemetry (thing_name, ts, message_id, rule_name, topic, payload)
            SELECT t, s, m, r, p, j::jsonb FROM unnest(@things, @times, @ids, @rules, @topics, @payloads) AS u(t, s, m, r, p, j)
            ON CONFLICT DO NOTHING
            """);
        insert.Parameters.Add(new NpgsqlParameter("things", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = things });
        insert.Parameters.Add(new NpgsqlParameter("times", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = times });
        insert.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = ids });
        insert.Parameters.Add(new NpgsqlParameter("rules", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = rules });
        insert.Parameters.Add(new NpgsqlParameter("topics", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = topics });
        insert.Parameters.Add(new NpgsqlParameter("payloads", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = payloads });
        batch.BatchCommands.Add(insert);
        await batch.ExecuteNonQueryAsync();
        await transaction.CommitAsync();
    }

    [LoggerMessage(EventId = 3004, Level = LogLevel.Information, Message = "Analytics retention ({Retention}): dropped {Count} day partitions")]
    private static partial void LogDropped(ILogger logger, int count, TimeSpan retention);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "Analytics retention failed; it runs again within the hour")]
    private static partial void LogRetentionFailed(ILogger logger, Exception exception);
}
