namespace OrleansIot.Grains.Abstractions.Telemetry;

/// <summary>One accepted device publish as it enters the telemetry stream.</summary>
/// <param name="Topic">The MQTT topic it was published to.</param>
/// <param name="Payload">The payload bytes, unchanged.</param>
/// <param name="ClientId">The MQTT client id of the publisher.</param>
/// <param name="Qos">The QoS the device published with (0, 1 or 2).</param>
/// <param name="Retain">Whether the publish carried the retain flag.</param>
/// <param name="ReceivedAt">When the gateway accepted it.</param>
/// <param name="Node">Name of the gateway node that accepted it.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.TelemetryMessage")]
public sealed record TelemetryMessage(
    [property: Id(0)] string Topic,
    [property: Id(1)] byte[] Payload,
    [property: Id(2)] string ClientId,
    [property: Id(3)] int Qos,
    [property: Id(4)] bool Retain,
    [property: Id(5)] DateTimeOffset ReceivedAt,
    [property: Id(6)] string Node)
{
    /// <summary>
    /// The message's identity from the gateway that accepted it (time-ordered): consumers that see a message twice
    /// (redelivery of the durable stream) recognise it, and idempotent writes key on it (rules: <c>traceid()</c>).
    /// </summary>
    [Id(7)]
    public Guid MessageId { get; init; }
}

/// <summary>
/// The unit on a telemetry stream: the publishes one gateway node accepted for one partition since its last batch.
/// Batching keeps the stream cost per message low (one stream event, and in PostgreSQL mode one row, per batch);
/// messages of one publisher are in publish order within and across batches.
/// </summary>
/// <param name="Partition">The partition (stream key) this batch belongs to.</param>
/// <param name="Messages">The messages, in the order the gateway accepted them.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.TelemetryBatch")]
public sealed record TelemetryBatch(
    [property: Id(0)] int Partition,
    [property: Id(1)] IReadOnlyList<TelemetryMessage> Messages)
{
    /// <summary>
    /// The rule catalog's version the gateway had read when it wrote the batch (0 from a node of an earlier release).
    /// An evaluator that has an older one reads the catalog first, so a message published after a rule change was
    /// answered meets the changed rules.
    /// </summary>
    [Id(2)]
    public long RulesVersion { get; init; }
}
