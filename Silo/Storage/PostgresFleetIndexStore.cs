using Npgsql;
using NpgsqlTypes;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.FleetIndex;
using OrleansIot.Grains.Registry;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// The thing index in three tables, one per part (deploy/postgres/010): a registered thing has a row in each, so a
/// search joins them. Writes are group-committed: the parts waiting while a writer is busy go out as one batch (one
/// upsert per part table), and each thing grain's write completes
/// when its row is committed, so a search after an acknowledged change sees it. Queries are the translated tree
/// (<see cref="FleetQuerySql"/>): only parameters carry the query's text.
/// </summary>
internal sealed class PostgresFleetIndexStore : IFleetIndexStore, IAsyncDisposable
{
    private const string Visible = "r.document IS NOT NULL";

    /// <summary>The three parts of every entry (a registry write makes sure the other two rows exist).</summary>
    private const string Entries = "iot_fleet_index r JOIN iot_fleet_index_shadow s USING (thing_name) JOIN iot_fleet_index_connectivity c USING (thing_name)";

    /// <summary>The registry part and the other parts the condition (or an aggregation) reads.</summary>
    private static string EntriesFor(FleetQuerySql sql, IndexPart? also = null) =>
        "iot_fleet_index r"
        + (sql.Uses(IndexPart.Shadow) || also == IndexPart.Shadow ? " JOIN iot_fleet_index_shadow s USING (thing_name)" : "")
        + (sql.Uses(IndexPart.Connectivity) || also == IndexPart.Connectivity ? " JOIN iot_fleet_index_connectivity c USING (thing_name)" : "");
    private readonly NpgsqlDataSource _dataSource;
    private readonly GroupCommit<IndexWrite> _writes;

    public PostgresFleetIndexStore(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _writes = new GroupCommit<IndexWrite>("fleet-index", WriteAsync, maxItems: 512, writers: 2);
    }

    public Task WriteAsync(string thingName, IReadOnlyList<IndexPartWrite> parts) =>
        _writes.AddAsync([.. parts.Select(p => new IndexWrite(thingName, p.Part, p.Section, Remove: false))]);

    public async Task WriteConnectivityAsync(IReadOnlyList<ConnectivityIndexWrite> writes)
    {
        if (writes.Count == 0)
        {
            return;
        }

        // An update, not an upsert: a registered thing's registry write made its connectivity row, and a device that
        // is not registered gets none.
        await using var command = _dataSource.CreateCommand("""
            UPDATE iot_fleet_index_connectivity AS c SET document = v.d::jsonb, fields = v.f::jsonb, updated_at = now()
              FROM unnest(@names, @docs, @fields) AS v(n, d, f) JOIN iot_fleet_index r ON r.thing_name = v.n AND r.document IS NOT NULL
             WHERE c.thing_name = v.n
            """);
        command.Parameters.Add(new NpgsqlParameter("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = writes.Select(w => w.ThingName).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("docs", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = writes.Select(w => w.Section.Document).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("fields", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = writes.Select(w => w.Section.Fields).ToArray() });
        await command.ExecuteNonQueryAsync();
    }

    public Task RemoveAsync(string thingName) => _writes.AddAsync([new IndexWrite(thingName, IndexPart.Registry, null, Remove: true)]);

    public async Task<IndexSearchPage> SearchAsync(FleetQuery query, string? afterThingName, int maxResults)
    {
        var sql = FleetQuerySql.Translate(query.Root);
        var after = sql.Arg((object?)afterThingName ?? DBNull.Value, SqlArgType.Text);
        var limit = sql.Arg(maxResults + 1, SqlArgType.Whole);
        await using var command = Command(sql, $"""
            WITH page AS (
                SELECT r.thing_name FROM {EntriesFor(sql)}
                 WHERE {Visible} AND ({sql.Condition}) AND ({after}::text IS NULL OR r.thing_name > {after}::text)
                 ORDER BY r.thing_name LIMIT {limit}::int)
            SELECT r.thing_name, r.document::text, s.document::text, c.document::text FROM page JOIN {Entries} USING (thing_name)
             ORDER BY r.thing_name
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

    public async Task<IReadOnlyList<string>> ShadowsNewerThanEntriesAsync()
    {
        // Both times are now() of the writing transactions on this one server: an entry written behind a shadow's
        // write is later; one a dead node never wrote is earlier (or missing).
        await using var command = _dataSource.CreateCommand("""
            SELECT DISTINCT s.thing_name COLLATE "C" FROM iot_shadows s
              JOIN iot_fleet_index r ON r.thing_name = s.thing_name COLLATE "C"
              LEFT JOIN iot_fleet_index_shadow i ON i.thing_name = s.thing_name COLLATE "C"
             WHERE r.document IS NOT NULL AND s.updated_at > coalesce(i.updated_at, '-infinity')
            """);
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            names.Add(reader.GetString(0));
        }

        return names;
    }

    public async Task<RegistryPage<string>> NamesAsync(string? afterThingName, int maxResults)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT thing_name FROM (SELECT thing_name FROM iot_fleet_index UNION SELECT thing_name FROM iot_fleet_index_shadow UNION SELECT thing_name FROM iot_fleet_index_connectivity) n
             WHERE @after::text IS NULL OR thing_name > @after::text ORDER BY thing_name LIMIT @limit
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
        var part = IndexFieldNames.PartOf(field) ?? IndexPart.Registry;
        var column = IndexFieldNames.Column(part);
        var name = sql.Arg(field, SqlArgType.Text);
        return (sql, $"""
            FROM {EntriesFor(sql, part)} CROSS JOIN LATERAL (SELECT ae.v AS e, {FleetQuerySql.NumberOf("ae.v")} AS n FROM jsonb_array_elements({column} -> {name}) AS ae(v)) x
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
            foreach (var table in Tables)
            {
                var remove = new NpgsqlBatchCommand($"DELETE FROM {table} WHERE thing_name = ANY(@names)");
                remove.Parameters.Add(new NpgsqlParameter("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = removed });
                batch.BatchCommands.Add(remove);
            }
        }

        foreach (var part in writes.Where(w => !w.Remove).GroupBy(w => w.Part))
        {
            // One row per thing (the last write wins): an upsert cannot touch a row twice.
            var rows = part.GroupBy(w => w.ThingName, StringComparer.Ordinal).Select(g => g.Last()).ToList();
            var table = Tables[(int)part.Key];
            var names = rows.Select(r => r.ThingName).ToArray();
            var upsert = new NpgsqlBatchCommand($"""
                INSERT INTO {table} AS t (thing_name, document, fields, updated_at)
                SELECT v.n, v.d::jsonb, coalesce(v.f::jsonb, jsonb_build_object()), now() FROM unnest(@names, @docs, @fields) AS v(n, d, f)
                ON CONFLICT (thing_name) DO UPDATE SET document = EXCLUDED.document, fields = EXCLUDED.fields, updated_at = now()
                """);
            upsert.Parameters.Add(new NpgsqlParameter("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = names });
            upsert.Parameters.Add(new NpgsqlParameter("docs", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = rows.Select(r => r.Section?.Document).ToArray() });
            upsert.Parameters.Add(new NpgsqlParameter("fields", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = rows.Select(r => r.Section?.Fields).ToArray() });
            batch.BatchCommands.Add(upsert);
            if (part.Key == IndexPart.Registry)
            {
                // Every entry has all three rows, so searches join them without outer joins.
                foreach (var other in Tables.Skip(1))
                {
                    var ensure = new NpgsqlBatchCommand($"INSERT INTO {other} (thing_name) SELECT unnest(@names) ON CONFLICT DO NOTHING");
                    ensure.Parameters.Add(new NpgsqlParameter("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = names });
                    batch.BatchCommands.Add(ensure);
                }
            }
        }

        await batch.ExecuteNonQueryAsync();
    }

    /// <summary>The part tables, by <see cref="IndexPart"/>.</summary>
    private static readonly string[] Tables = ["iot_fleet_index", "iot_fleet_index_shadow", "iot_fleet_index_connectivity"];

    private sealed record IndexWrite(string ThingName, IndexPart Part, IndexSection? Section, bool Remove);
}
