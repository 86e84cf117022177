using System.Threading.Channels;
using Npgsql;
using NpgsqlTypes;
using OrleansIot.Grains.Shadows;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// Shadows in <c>iot_shadows</c> (deploy/postgres/003). Writes are group-committed: every write waiting when a writer
/// is free goes into one multi-row upsert, so a thousand things updating at once cost a few round trips, not a
/// thousand, and each caller still learns only after its row is committed. Each row is conditional on the
/// revision it replaces; the statement returns the rows it wrote, the others were refused.
/// </summary>
internal sealed class PostgresShadowStore : IShadowStore, IAsyncDisposable
{
    private const int MaxBatch = 512;

    // Two statements in flight: one fills while the other commits.
    private const int Writers = 2;

    private readonly NpgsqlDataSource _dataSource;
    private readonly Channel<PendingWrite> _pending = Channel.CreateUnbounded<PendingWrite>();
    private readonly Task[] _writers;

    public PostgresShadowStore(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _writers = [.. Enumerable.Range(0, Writers).Select(_ => Task.Run(WriteLoopAsync))];
    }

    public async Task<IReadOnlyList<StoredShadow>> LoadAsync(string thingName, CancellationToken cancellationToken)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT shadow_name, version, revision, document::text, deleted_at_ms, client_tokens::text
              FROM iot_shadows WHERE thing_name = @thing
            """);
        command.Parameters.AddWithValue("thing", thingName);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var rows = new List<StoredShadow>();
        while (await reader.ReadAsync(cancellationToken))
        {
            rows.Add(new StoredShadow(
                thingName,
                reader.GetString(0),
                reader.GetInt64(1),
                reader.GetInt64(2),
                reader.IsDBNull(3) ? null : reader.GetString(3),
                reader.IsDBNull(4) ? null : reader.GetInt64(4),
                reader.IsDBNull(5) ? null : reader.GetString(5)));
        }

        return rows;
    }

    public Task<bool> SaveAsync(StoredShadow shadow, CancellationToken cancellationToken)
    {
        var write = new PendingWrite(shadow, new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously));
        ObjectDisposedException.ThrowIf(!_pending.Writer.TryWrite(write), this);

        return write.Done.Task;
    }

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        await Task.WhenAll(_writers);
    }

    private async Task WriteLoopAsync()
    {
        var batch = new List<PendingWrite>(MaxBatch);
        var keys = new HashSet<(string, string)>();
        var deferred = new List<PendingWrite>();
        while (await _pending.Reader.WaitToReadAsync())
        {
            batch.Clear();
            keys.Clear();
            batch.AddRange(deferred);
            deferred.Clear();
            foreach (var write in batch)
            {
                keys.Add((write.Shadow.ThingName, write.Shadow.ShadowName));
            }

            while (batch.Count < MaxBatch && _pending.Reader.TryRead(out var write))
            {
                // One row may appear once per statement; a second write of it waits for the next one.
                if (keys.Add((write.Shadow.ThingName, write.Shadow.ShadowName)))
                {
                    batch.Add(write);
                }
                else
                {
                    deferred.Add(write);
                }
            }

            if (batch.Count == 0)
            {
                continue;
            }

            try
            {
                var written = await StorageMetrics.TimeAsync("shadows", batch.Count, () => WriteAsync(batch));
                foreach (var write in batch)
                {
                    write.Done.TrySetResult(written.Contains((write.Shadow.ThingName, write.Shadow.ShadowName)));
                }
            }
            catch (Exception ex)
            {
                foreach (var write in batch)
                {
                    write.Done.TrySetException(ex);
                }
            }
        }

        foreach (var write in deferred)
        {
            write.Done.TrySetException(new ObjectDisposedException(nameof(PostgresShadowStore)));
        }
    }

    private async Task<HashSet<(string, string)>> WriteAsync(List<PendingWrite> batch)
    {
        var n = batch.Count;
        var things = new string[n];
        var names = new string[n];
        var versions = new long[n];
        var revisions = new long[n];
        var documents = new string?[n];
        var deleted = new long?[n];
        var tokens = new string?[n];
        for (var i = 0; i < n; i++)
        {
            var s = batch[i].Shadow;
            (things[i], names[i], versions[i], revisions[i], documents[i], deleted[i], tokens[i]) =
                (s.ThingName, s.ShadowName, s.Version, s.Revision, s.Document, s.DeletedAtUnixMs, s.Remembered);
        }

        await using var command = _dataSource.CreateCommand("""
            INSERT INTO iot_shadows AS s (thing_name, shadow_name, version, revision, document, deleted_at_ms, client_tokens, updated_at)
            SELECT t, n, v, r, d::jsonb, x, k::jsonb, now()
              FROM unnest(@things, @names, @versions, @revisions, @documents, @deleted, @tokens) AS u(t, n, v, r, d, x, k)
             WHERE u.r = 1 OR EXISTS (SELECT 1 FROM iot_shadows e WHERE e.thing_name = u.t AND e.shadow_name = u.n)
            ON CONFLICT (thing_name, shadow_name) DO UPDATE SET
                   version = EXCLUDED.version, revision = EXCLUDED.revision, document = EXCLUDED.document,
                   deleted_at_ms = EXCLUDED.deleted_at_ms, client_tokens = EXCLUDED.client_tokens, updated_at = EXCLUDED.updated_at
             WHERE s.revision = EXCLUDED.revision - 1
            RETURNING thing_name, shadow_name
            """);
        command.Parameters.Add(new NpgsqlParameter("things", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = things });
        command.Parameters.Add(new NpgsqlParameter("names", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = names });
        command.Parameters.Add(new NpgsqlParameter("versions", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = versions });
        command.Parameters.Add(new NpgsqlParameter("revisions", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = revisions });
        command.Parameters.Add(new NpgsqlParameter("documents", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = documents });
        command.Parameters.Add(new NpgsqlParameter("deleted", NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = deleted });
        command.Parameters.Add(new NpgsqlParameter("tokens", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = tokens });
        var written = new HashSet<(string, string)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            written.Add((reader.GetString(0), reader.GetString(1)));
        }

        return written;
    }

    private sealed record PendingWrite(StoredShadow Shadow, TaskCompletionSource<bool> Done);
}
