using Npgsql;
using NpgsqlTypes;
using OrleansIot.Grains.Abstractions.Queues;
using OrleansIot.Grains.Queues;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// Queues in <c>iot_queue_messages</c> (deploy/postgres/006). Sends are group-committed and skip ids already
/// stored; a receive takes the oldest visible messages with <c>FOR UPDATE SKIP LOCKED</c> (consumers on any node
/// never get the same message at once), hides them and gives each a new receipt; a delete needs the latest receipt.
/// </summary>
internal sealed class PostgresQueueStore : IQueueStore, IAsyncDisposable
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly GroupCommit<QueueItem> _commit;

    public PostgresQueueStore(NpgsqlDataSource dataSource)
    {
        _dataSource = dataSource;
        _commit = new GroupCommit<QueueItem>("queues", WriteAsync, maxItems: 2048, writers: 2);
    }

    public Task SendAsync(IReadOnlyList<QueueItem> items) => _commit.AddAsync(items);

    public async Task<IReadOnlyList<QueueMessage>> ReceiveAsync(string queueName, int max, TimeSpan visibility)
    {
        await using var command = _dataSource.CreateCommand("""
            UPDATE iot_queue_messages m
               SET visible_at = now() + @visibility, receive_count = m.receive_count + 1, receipt = gen_random_uuid()
              FROM (SELECT message_id FROM iot_queue_messages
                     WHERE queue_name = @queue AND visible_at <= now()
                     ORDER BY seq LIMIT @max FOR UPDATE SKIP LOCKED) next
             WHERE m.queue_name = @queue AND m.message_id = next.message_id
            RETURNING m.message_id, m.receipt, m.body, m.sent_at, m.receive_count, m.seq
            """);
        command.Parameters.AddWithValue("queue", queueName);
        command.Parameters.AddWithValue("max", max);
        command.Parameters.AddWithValue("visibility", visibility);
        var received = new List<(long Seq, QueueMessage Message)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            received.Add((reader.GetInt64(5), new QueueMessage(
                reader.GetGuid(0), reader.GetGuid(1).ToString("N"), reader.GetFieldValue<byte[]>(2), reader.GetFieldValue<DateTimeOffset>(3), reader.GetInt32(4))));
        }

        return [.. received.OrderBy(r => r.Seq).Select(r => r.Message)];
    }

    public async Task<int> DeleteAsync(string queueName, IReadOnlyList<string> receiptHandles)
    {
        var receipts = receiptHandles.Select(h => Guid.TryParse(h, out var g) ? g : Guid.Empty).Where(g => g != Guid.Empty).ToArray();
        if (receipts.Length == 0)
        {
            return 0;
        }

        await using var command = _dataSource.CreateCommand("DELETE FROM iot_queue_messages WHERE queue_name = @queue AND receipt = ANY(@receipts)");
        command.Parameters.AddWithValue("queue", queueName);
        command.Parameters.Add(new NpgsqlParameter("receipts", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = receipts });
        return await command.ExecuteNonQueryAsync();
    }

    public async Task<QueueStats> StatsAsync(string queueName)
    {
        await using var command = _dataSource.CreateCommand("""
            SELECT count(*) FILTER (WHERE visible_at <= now()), count(*) FILTER (WHERE visible_at > now())
              FROM iot_queue_messages WHERE queue_name = @queue
            """);
        command.Parameters.AddWithValue("queue", queueName);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new QueueStats(reader.GetInt64(0), reader.GetInt64(1));
    }

    public ValueTask DisposeAsync() => _commit.DisposeAsync();

    private async Task WriteAsync(List<QueueItem> items)
    {
        await using var command = _dataSource.CreateCommand("""
            INSERT INTO iot_queue_messages (queue_name, message_id, body)
            SELECT q, m, b FROM unnest(@queues, @ids, @bodies) AS u(q, m, b)
            ON CONFLICT DO NOTHING
            """);
        command.Parameters.Add(new NpgsqlParameter("queues", NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = items.Select(i => i.QueueName).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("ids", NpgsqlDbType.Array | NpgsqlDbType.Uuid) { Value = items.Select(i => i.MessageId).ToArray() });
        command.Parameters.Add(new NpgsqlParameter("bodies", NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = items.Select(i => i.Body).ToArray() });
        await command.ExecuteNonQueryAsync();
    }
}
