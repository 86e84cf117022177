using System.Security.Cryptography;
using Npgsql;
using OrleansIot.Grains.Abstractions.Artifacts;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// Artifact bytes in <c>iot_artifact_chunks</c> (deploy/postgres/009): the upload streams through in 1 MiB chunks
/// (one in memory at a time) inside one transaction, so a failed or oversized upload leaves nothing; a range read
/// fetches only the chunks it covers.
/// </summary>
internal sealed class PostgresArtifactStore(NpgsqlDataSource dataSource) : IArtifactBlobStore
{
    private const int ChunkBytes = 1024 * 1024;

    public async Task<(long Size, string Sha256)> WriteAsync(string artifactId, Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
        await using (var clear = new NpgsqlCommand("DELETE FROM iot_artifact_chunks WHERE artifact_id = @id", connection, transaction))
        {
            clear.Parameters.AddWithValue("id", artifactId);
            await clear.ExecuteNonQueryAsync(cancellationToken);
        }

        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var buffer = new byte[ChunkBytes];
        long size = 0;
        for (var chunk = 0; ; chunk++)
        {
            var filled = 0;
            int read;
            while (filled < ChunkBytes && (read = await content.ReadAsync(buffer.AsMemory(filled), cancellationToken)) > 0)
            {
                filled += read;
            }

            if (filled == 0)
            {
                break;
            }

            size += filled;
            if (size > maxBytes)
            {
                throw new ArtifactTooLargeException(maxBytes);   // the transaction rolls back: nothing is kept
            }

            hash.AppendData(buffer, 0, filled);
            await using var insert = new NpgsqlCommand("INSERT INTO iot_artifact_chunks (artifact_id, chunk, data) VALUES (@id, @chunk, @data)", connection, transaction);
            insert.Parameters.AddWithValue("id", artifactId);
            insert.Parameters.AddWithValue("chunk", chunk);
            insert.Parameters.Add(new NpgsqlParameter<ReadOnlyMemory<byte>>("data", buffer.AsMemory(0, filled)));
            await insert.ExecuteNonQueryAsync(cancellationToken);
            if (filled < ChunkBytes)
            {
                break;
            }
        }

        await transaction.CommitAsync(cancellationToken);
        return (size, Convert.ToHexStringLower(hash.GetHashAndReset()));
    }

    public async Task ReadAsync(string artifactId, long offset, long length, Stream destination, CancellationToken cancellationToken)
    {
        if (length <= 0)
        {
            return;
        }

        var first = (int)(offset / ChunkBytes);
        var last = (int)((offset + length - 1) / ChunkBytes);
        for (var chunk = first; chunk <= last; chunk++)
        {
            // One chunk per query: a long download holds no connection or snapshot between chunks.
            await using var command = dataSource.CreateCommand("SELECT data FROM iot_artifact_chunks WHERE artifact_id = @id AND chunk = @chunk");
            command.Parameters.AddWithValue("id", artifactId);
            command.Parameters.AddWithValue("chunk", chunk);
            var data = await command.ExecuteScalarAsync(cancellationToken) as byte[]
                ?? throw new IOException($"Artifact {artifactId} is missing chunk {chunk}.");
            var start = chunk == first ? (int)(offset % ChunkBytes) : 0;
            var count = (int)Math.Min(data.Length - start, length);
            await destination.WriteAsync(data.AsMemory(start, count), cancellationToken);
            length -= count;
        }
    }

    public async Task DeleteAsync(string artifactId, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("DELETE FROM iot_artifact_chunks WHERE artifact_id = @id");
        command.Parameters.AddWithValue("id", artifactId);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }
}
