using System.Text.Json;
using Npgsql;
using NpgsqlTypes;
using OrleansIot.Gateway.Retained;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Silo.Storage;

/// <summary>Retained messages in <c>iot_retained_messages</c> (deploy/postgres/002), newest change wins per topic.</summary>
internal sealed class PostgresRetainedMessageStore(NpgsqlDataSource dataSource) : IRetainedMessageStore
{
    public async Task<IReadOnlyList<RetainedChange>> LoadAllAsync(CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            SELECT topic, payload, qos, sender_client_id, content_type, response_topic, correlation_data,
                   user_properties::text, message_expiry, payload_format, modified_at, origin_node
              FROM iot_retained_messages
            """);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        var changes = new List<RetainedChange>();
        while (await reader.ReadAsync(cancellationToken))
        {
            var topic = reader.GetString(0);
            ForwardedMessage? message = null;
            if (!reader.IsDBNull(1))
            {
                message = new ForwardedMessage(
                    topic,
                    (byte[])reader[1],
                    reader.GetInt32(2),
                    reader.GetString(3),
                    reader.IsDBNull(4) ? null : reader.GetString(4),
                    reader.IsDBNull(5) ? null : reader.GetString(5),
                    reader.IsDBNull(6) ? null : (byte[])reader[6],
                    reader.IsDBNull(7) ? null : ReadUserProperties(reader.GetString(7)),
                    (uint)reader.GetInt64(8),
                    reader.GetInt32(9));
            }

            changes.Add(new RetainedChange(topic, message, reader.GetFieldValue<DateTimeOffset>(10), reader.GetString(11)));
        }

        return changes;
    }

    public async Task SaveAsync(RetainedChange change, CancellationToken cancellationToken)
    {
        await using var command = dataSource.CreateCommand("""
            INSERT INTO iot_retained_messages AS r
                   (topic, payload, qos, sender_client_id, content_type, response_topic, correlation_data,
                    user_properties, message_expiry, payload_format, modified_at, origin_node)
            VALUES (@topic, @payload, @qos, @sender, @content_type, @response_topic, @correlation_data,
                    @user_properties::jsonb, @message_expiry, @payload_format, @modified_at, @origin_node)
            ON CONFLICT (topic) DO UPDATE SET
                   payload = EXCLUDED.payload, qos = EXCLUDED.qos, sender_client_id = EXCLUDED.sender_client_id,
                   content_type = EXCLUDED.content_type, response_topic = EXCLUDED.response_topic,
                   correlation_data = EXCLUDED.correlation_data, user_properties = EXCLUDED.user_properties,
                   message_expiry = EXCLUDED.message_expiry, payload_format = EXCLUDED.payload_format,
                   modified_at = EXCLUDED.modified_at, origin_node = EXCLUDED.origin_node
             WHERE (EXCLUDED.modified_at, EXCLUDED.origin_node COLLATE "C") > (r.modified_at, r.origin_node COLLATE "C")
            """);
        var m = change.Message;
        command.Parameters.AddWithValue("topic", change.Topic);
        command.Parameters.Add(new NpgsqlParameter("payload", NpgsqlDbType.Bytea) { Value = (object?)m?.Payload ?? DBNull.Value });
        command.Parameters.AddWithValue("qos", m?.Qos ?? 0);
        command.Parameters.AddWithValue("sender", m?.SenderClientId ?? "");
        command.Parameters.Add(new NpgsqlParameter("content_type", NpgsqlDbType.Text) { Value = (object?)m?.ContentType ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("response_topic", NpgsqlDbType.Text) { Value = (object?)m?.ResponseTopic ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("correlation_data", NpgsqlDbType.Bytea) { Value = (object?)m?.CorrelationData ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("user_properties", NpgsqlDbType.Text) { Value = m?.UserProperties is { } p ? WriteUserProperties(p) : DBNull.Value });
        command.Parameters.AddWithValue("message_expiry", (long)(m?.MessageExpiryInterval ?? 0));
        command.Parameters.AddWithValue("payload_format", m?.PayloadFormatIndicator ?? 0);
        command.Parameters.AddWithValue("modified_at", change.ModifiedAt);
        command.Parameters.AddWithValue("origin_node", change.OriginNodeId);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    private static string WriteUserProperties(IReadOnlyList<KeyValuePair<string, byte[]>> properties) =>
        JsonSerializer.Serialize(properties.Select(p => new UserProperty(p.Key, Convert.ToBase64String(p.Value))));

    private static List<KeyValuePair<string, byte[]>> ReadUserProperties(string json) =>
        [.. (JsonSerializer.Deserialize<List<UserProperty>>(json) ?? []).Select(p => new KeyValuePair<string, byte[]>(p.Name, Convert.FromBase64String(p.Value)))];

    private sealed record UserProperty(string Name, string Value);
}
