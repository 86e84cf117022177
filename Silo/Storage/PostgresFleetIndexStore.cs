using Npgsql;
using NpgsqlTypes;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.FleetIndex;
using OrleansIot.Grains.Registry;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// The thing index in <c>iot_fleet_index</c> (deploy/postgres/010). Writes are group-committed: the parts waiting
/// while a writer is busy go out as one batch (one upsert per part kind), and each thing grain's write completes
/// when its row is committed, so a search after an acknowledged change sees it. Queries are the translated tree
/// (<see cref="FleetQuerySql"/>): only parameters carry the query's text.
/// </summary>
internal sealed class PostgresFleetIndexStore : IFleetIndexStore, IAsyncDisposable
{
    private const string Visible = "i.registry IS NOT NULL";
    private readonly NpgsqlDataSource _dataSource;
    private readonly GroupCommit<IndexWrite> _writes;

    public PostgresFleetIndexStore(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _writes = new GroupCommit<IndexWrite>(WriteAsync, maxItems: 512, writers: 2);
    }

    public Task WriteAsync(string thingName, IndexPart part, IndexSection? section) => _writes.AddAsync([new IndexWrite(thingName, part, section, Remove: false)]);

    public Task RemoveAsync(string thingName) => _writes.AddAsync([new IndexWrite(thingName, IndexPart.Registry, null, Remove: true)]);

    public async Task<IndexSearchPage> SearchAsync(FleetQuery query, string? afterThingName, int maxResults)
    {
        var sql = FleetQuerySql.Translate(query.Root);
        var after = sql.Arg((object?)afterThingName ?? DBNull.Value, SqlArgType.Text);
        var limit = sql.Arg(maxResults + 1, SqlArgType.Whole);
        await using var command = Command(sql, $"""
            SELECT i.thing_name, i.registry::text, i.shadow::text, i.connectivity::text FROM iot_fleet_index i
             WHERE {Visible} AND ({sql.Condition}) AND ({after}::text IS NULL OR i.thing_name COLLATE "C" > {after}::text)
             ORDER BY i.thing_name COLLATE "C" LIMIT {limit}::int
            """);
        var things = new List<IndexedThingDocument>();
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                things.Add(new IndexedThingDocument(reader.GetString(0), reader.GetString(1), reader.IsDBNull(2) ? null : reader.GetString(2), reader.IsDBNull(3) ? null : reader.GetString(3)));
            }
        }

        string? next = null;
        if (things.Count > maxResults)
        {
            things.RemoveAt(maxResults);
            next = RegistryPaging.Token(things[^1].ThingName);
        }

        return new IndexSearchPage(things, next);
    }

    public async Task<FleetStatistics> StatisticsAsync(FleetQuery query, string field)
    {
        var (sql, from) = Elements(query, field);
        await using var command = Command(sql, $"SELECT count(x.e), count(x.n), sum(x.n), min(x.n), max(x.n), sum(x.n * x.n) {from}");
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        var count = reader.GetInt64(0);
        var numeric = reader.GetInt64(1);
        if (numeric == 0)
        {
            return new FleetStatistics(count, null, null, null, null, null, null, null);
        }

        var sum = reader.GetDouble(2);
        var squares = reader.GetDouble(5);
        var average = sum / numeric;
        var variance = Math.Max(0, (squares / numeric) - (average * average));
        return new FleetStatistics(numeric, average, sum, reader.GetDouble(3), reader.GetDouble(4), squares, variance, Math.Sqrt(variance));
    }

    public async Task<long> CardinalityAsync(FleetQuery query, string field)
    {
        var (sql, from) = Elements(query, field);
        await using var command = Command(sql, $"SELECT count(DISTINCT x.e #>> '{{}}') {from}");
        return (long)(await command.ExecuteScalarAsync())!;
    }

    public async Task<IReadOnlyList<FleetPercentile>> PercentilesAsync(FleetQuery query, string field, IReadOnlyList<double> percents)
    {
        var (sql, from) = Elements(query, field);
        var fractions = sql.Arg(percents.Select(p => p / 100).ToArray(), SqlArgType.Real);
        await using var command = Command(sql, $"SELECT percentile_cont({fractions}::float8[]) WITHIN GROUP (ORDER BY x.n) {from} AND x.n IS NOT NULL");
        var result = await command.ExecuteScalarAsync();
        return result is double[] values ? [.. percents.Select((p, i) => new FleetPercentile(p, values[i]))] : [];
    }

    public async Task<IReadOnlyList<FleetBucket>> BucketsAsync(FleetQuery query, string field, int maxBuckets)
    {
        var (sql, from) = Elements(query, field);
        var limit = sql.Arg(maxBuckets, SqlArgType.Whole);
        await using var command = Command(sql, $"SELECT x.e #>> '{{}}', count(*) {from} GROUP BY 1 ORDER BY 2 DESC, (x.e #>> '{{}}') COLLATE \"C\" LIMIT {limit}::int");
        await using var reader = await command.ExecuteReaderAsync();
        var buckets = new List<FleetBucket>();
        while (await reader.ReadAsync())
        {
            buckets.Add(new FleetBucket(reader.GetString(0), reader.GetInt64(1)));
        }

        return buckets;
    }

    public async Task<RegistryPage<string>> NamesAsync(string? afterThingName, int maxResults)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT thing_name FROM iot_fleet_index WHERE @after::text IS NULL OR thing_name COLLATE "C" > @after::text ORDER BY thing_name COLLATE "C" LIMIT @limit
            """);
        command.Parameters.Add(new NpgsqlParameter("after", NpgsqlDbType.Text) { Value = (object?)afterThingName ?? DBNull.Value });
        command.Parameters.AddWithValue("limit", maxResults + 1);
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            names.Add(reader.GetString(0));
        }

        return RegistryPaging.Page(names, maxResults, n => n);
    }

    public ValueTask DisposeAsync() => _writes.DisposeAsync();

    /// <summary>The field's elements of every matching thing, each with its numeric value (<c>x.e</c>, <c>x.n</c>).</summary>
    private static (FleetQuerySql Sql, string From) Elements(FleetQuery query, string field)
    {
        var sql = FleetQuerySql.Translate(query.Root);
        var column = IndexFieldNames.Column(IndexFieldNames.PartOf(field) ?? IndexPart.Registry);
        var name = sql.Arg(field, SqlArgType.Text);
        return (sql, $"""
            FROM iot_fleet_index i CROSS JOIN LATERAL (SELECT ae.v AS e, {FleetQuerySql.NumberOf("ae.v")} AS n FROM jsonb_array_elements(i.{column} -> {name}) AS ae(v)) x
            WHERE {Visible} AND ({sql.Condition})
            """);
    }

    private NpgsqlCommand Command(FleetQuerySql sql, string text)
    {
        var command = _dataSource.CreateCommand(text);
        foreach (var arg in sql.Args)
        {
            command.Parameters.Add(arg.Type switch
            {
                SqlArgType.Real when arg.Value is double[] values => new NpgsqlParameter(arg.Name, NpgsqlDbType.Array | NpgsqlDbType.Double) { Value = values },
                SqlArgType.Whole => new NpgsqlParameter(arg.Name, NpgsqlDbType.Integer) { Value = arg.Value },
                SqlArgType.Real => new NpgsqlParameter(arg.Name, NpgsqlDbType.Double) { Value = arg.Value },
                _ => new NpgsqlParameter(arg.Name, NpgsqlDbType.Text) { Value = arg.Value },
            });
        }

        return command;
    }

    private async Task WriteAsync(List<IndexWrite> writes)
    {
        await using var connection = await _dataSource.OpenConnectionAsync();
        await using var batch = new NpgsqlBatch(connection);
        var removed = writes.Where(w => w.Remove).Select(w => w.ThingName).Distinct(StringComparer.Ordinal).ToArray();
        if (removed.Length > 0)
        {
            var remove = new NpgsqlBatchCommand("DELETE FROM iot_fleet_index WHERE thing_name = ANY(@names)");
            remove.Parameters.Add(new NpgsqlParameter("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = removed });
            batch.BatchCommands.Add(remove);
        }

        foreach (var part in writes.Where(w => !w.Remove).GroupBy(w => w.Part))
        {
            // One row per thing (the last write wins): an upsert cannot touch a row twice.
            var rows = part.GroupBy(w => w.ThingName, StringComparer.Ordinal).Select(g => g.Last()).ToList();
            var column = part.Key switch { IndexPart.Registry => "registry", IndexPart.Shadow => "shadow", _ => "connectivity" };
            var upsert = new NpgsqlBatchCommand($"""
                INSERT INTO iot_fleet_index AS i (thing_name, {column}, {column}_fields, updated_at)
                SELECT v.n, v.d::jsonb, coalesce(v.f::jsonb, jsonb_build_object()), now() FROM unnest(@names, @docs, @fields) AS v(n, d, f)
                ON CONFLICT (thing_name) DO UPDATE SET {column} = EXCLUDED.{column}, {column}_fields = EXCLUDED.{column}_fields, updated_at = now()
                """);
            upsert.Parameters.Add(new NpgsqlParameter("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = rows.Select(r => r.ThingName).ToArray() });
            upsert.Parameters.Add(new NpgsqlParameter("docs", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = rows.Select(r => r.Section?.Document).ToArray() });
            upsert.Parameters.Add(new NpgsqlParameter("fields", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = rows.Select(r => r.Section?.Fields).ToArray() });
            batch.BatchCommands.Add(upsert);
        }

        await batch.ExecuteNonQueryAsync();
    }

    private sealed record IndexWrite(string ThingName, IndexPart Part, IndexSection? Section, bool Remove);
}
