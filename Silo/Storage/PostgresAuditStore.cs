using Npgsql;
using NpgsqlTypes;
using OrleansIot.Grains.Abstractions.Audit;
using OrleansIot.Grains.Audit;

namespace OrleansIot.Silo.Storage;

/// <summary>The audit log in <c>iot_audit</c> (deploy/postgres/008): group-committed appends, pages newest first by (time, id).</summary>
internal sealed class PostgresAuditStore : IAuditStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly GroupCommit<AuditRecord> _commit;

    public PostgresAuditStore(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _commit = new GroupCommit<AuditRecord>("audit", WriteAsync, maxItems: 1000, writers: 1);
    }

    public Task AppendAsync(IReadOnlyList<AuditRecord> records) => _commit.AddAsync(records);

    public async Task<(IReadOnlyList<AuditRecord> Records, AuditCursor? Last)> QueryAsync(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, AuditCursor? before, int maxResults)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT id, at, principal, operation, target, source, status FROM iot_audit
             WHERE at >= @from AND at < @to
               AND (@operation::text IS NULL OR operation = @operation)
               AND (@principal::text IS NULL OR principal = @principal)
               AND (@beforeAt::timestamptz IS NULL OR (at, id) < (@beforeAt, @beforeId))
             ORDER BY at DESC, id DESC LIMIT @max
            """);
        command.Parameters.AddWithValue("from", from);
        command.Parameters.AddWithValue("to", to);
        command.Parameters.Add(new NpgsqlParameter("operation", NpgsqlDbType.Text) { Value = (object?)operation ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("principal", NpgsqlDbType.Text) { Value = (object?)principal ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("beforeAt", NpgsqlDbType.TimestampTz) { Value = before is { } b ? b.Time : DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("beforeId", NpgsqlDbType.Bigint) { Value = before is { } c ? c.Id : DBNull.Value });
        command.Parameters.AddWithValue("max", maxResults);
        var records = new List<AuditRecord>();
        AuditCursor? last = null;
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            var record = new AuditRecord(reader.GetFieldValue<DateTimeOffset>(1), reader.GetString(2), reader.GetString(3), reader.GetString(4), reader.GetString(5), reader.GetInt32(6));
            last = new AuditCursor(record.Time, reader.GetInt64(0));
            records.Add(record);
        }

        return (records, last);
    }

    public ValueTask DisposeAsync() => _commit.DisposeAsync();

    private async Task WriteAsync(List<AuditRecord> records)
    {
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO iot_audit (at, principal, operation, target, source, status)
            SELECT * FROM unnest(@at, @principal, @operation, @target, @source, @status)
            """);
        command.Parameters.Add(new NpgsqlParameter("at", NpgsqlDbType.Array | NpgsqlDbType.TimestampTz) { Value = records.Select(r => r.Time).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("principal", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = records.Select(r => r.Principal).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("operation", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = records.Select(r => r.Operation).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("target", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = records.Select(r => r.Target).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("source", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = records.Select(r => r.SourceAddress).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("status", NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = records.Select(r => r.Status).ToArray() });
        await command.ExecuteNonQueryAsync();
    }
}
