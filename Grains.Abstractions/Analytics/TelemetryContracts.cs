namespace OrleansIot.Grains.Abstractions.Analytics;

/// <summary>How the values of one bucket are combined (<c>agg=</c> of <c>GET /api/telemetry</c>).</summary>
public enum TelemetryAggregate
{
    /// <summary>The mean of the numbers.</summary>
    Avg,

    /// <summary>The smallest number.</summary>
    Min,

    /// <summary>The largest number.</summary>
    Max,

    /// <summary>The sum of the numbers.</summary>
    Sum,

    /// <summary>How many numbers (without a path: how many points).</summary>
    Count,
}

/// <summary>
/// A question to the analytics sink: the points a thing's rules stored between <see cref="From"/> (inclusive) and
/// <see cref="To"/> (exclusive), optionally of one topic, looking at the JSON value at <see cref="Path"/> (dotted,
/// <c>a.b.c</c>; <c>null</c> = the whole stored document).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.TelemetryQuery")]
public sealed record TelemetryQuery(
    [property: Id(0)] string ThingName,
    [property: Id(1)] string? Topic,
    [property: Id(2)] IReadOnlyList<string>? Path,
    [property: Id(3)] DateTimeOffset From,
    [property: Id(4)] DateTimeOffset To,
    [property: Id(5)] TimeSpan Bucket,
    [property: Id(6)] TelemetryAggregate Aggregate,
    [property: Id(7)] int Limit);

/// <summary>
/// One time bucket: it starts at <see cref="Start"/> (buckets are aligned to the Unix epoch, so the same bucket
/// size always gives the same boundaries), <see cref="Count"/> values took part (numbers at the path; for
/// <see cref="TelemetryAggregate.Count"/> without a path, points) and <see cref="Value"/> is their aggregate.
/// Buckets without values are left out.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.TelemetryBucket")]
public sealed record TelemetryBucket(
    [property: Id(0)] DateTimeOffset Start,
    [property: Id(1)] double Value,
    [property: Id(2)] long Count);

/// <summary>One stored point: when the message arrived, its topic, the rule that stored it, and the JSON at the path.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.TelemetryPoint")]
public sealed record TelemetryPoint(
    [property: Id(0)] DateTimeOffset Time,
    [property: Id(1)] string Topic,
    [property: Id(2)] string RuleName,
    [property: Id(3)] string Json);

/// <summary>Reads the analytics sink (what the rules' <c>timeseries</c> action stored); any node answers.</summary>
[Alias("OrleansIot.ITelemetryQueryGrain")]
public interface ITelemetryQueryGrain : IGrainWithIntegerKey
{
    /// <summary>Time buckets of <see cref="TelemetryQuery.Bucket"/> with the aggregate of each, oldest first.</summary>
    [Alias("Aggregate")]
    Task<IReadOnlyList<TelemetryBucket>> Aggregate(TelemetryQuery query);

    /// <summary>The newest points (at most <see cref="TelemetryQuery.Limit"/>), newest first.</summary>
    [Alias("Points")]
    Task<IReadOnlyList<TelemetryPoint>> Points(TelemetryQuery query);
}
