using OrleansIot.Grains.Abstractions.Analytics;

namespace OrleansIot.Grains.Analytics;

/// <summary>
/// One output of a rule's <c>timeseries</c> action: a JSON document filed under a thing at the time its message
/// arrived. (<see cref="MessageId"/>, <see cref="RuleName"/>) identifies it: a redelivered message stores nothing new.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.TelemetryRecord")]
public sealed record TelemetryRecord(
    [property: Id(0)] string ThingName,
    [property: Id(1)] DateTimeOffset Time,
    [property: Id(2)] Guid MessageId,
    [property: Id(3)] string RuleName,
    [property: Id(4)] string Topic,
    [property: Id(5)] byte[] Json);

/// <summary>
/// The analytics sink: PostgreSQL (a time-partitioned table) or, embedded, a bounded ring per thing. Writes are
/// idempotent by (message, rule); reads aggregate in the store.
/// </summary>
public interface ITelemetryStore
{
    /// <summary>Stores the records; completes when they are stored (durably in PostgreSQL mode).</summary>
    Task AppendAsync(IReadOnlyList<TelemetryRecord> records, CancellationToken cancellationToken);

    /// <summary>See <see cref="ITelemetryQueryGrain.Aggregate"/>.</summary>
    Task<IReadOnlyList<TelemetryBucket>> AggregateAsync(TelemetryQuery query, CancellationToken cancellationToken);

    /// <summary>See <see cref="ITelemetryQueryGrain.Points"/>.</summary>
    Task<IReadOnlyList<TelemetryPoint>> PointsAsync(TelemetryQuery query, CancellationToken cancellationToken);
}
