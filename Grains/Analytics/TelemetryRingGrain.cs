using System.Text.Json;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions.Analytics;

namespace OrleansIot.Grains.Analytics;

/// <summary>Embedded mode: one thing's newest points, in memory (key = thing name).</summary>
[Alias("OrleansIot.ITelemetryRingGrain")]
internal interface ITelemetryRingGrain : IGrainWithStringKey
{
    [Alias("Append")]
    Task Append(IReadOnlyList<TelemetryRecord> records);

    [Alias("Aggregate"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<TelemetryBucket>> Aggregate(TelemetryQuery query);

    [Alias("Points"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<TelemetryPoint>> Points(TelemetryQuery query);
}

/// <summary>
/// A bounded ring of one thing's points (<see cref="AnalyticsOptions.RingCapacity"/>, and none older than the
/// retention), kept in time order. Nothing here is durable: this is the embedded default's sink.
/// </summary>
[GrainType("telemetry-ring")]
internal sealed class TelemetryRingGrain(IOptions<AnalyticsOptions> options, TimeProvider time) : Grain, ITelemetryRingGrain
{
    private readonly LinkedList<TelemetryRecord> _points = new();
    private readonly HashSet<(Guid, string)> _ids = [];

    public Task Append(IReadOnlyList<TelemetryRecord> records)
    {
        foreach (var record in records)
        {
            if (!_ids.Add((record.MessageId, record.RuleName)))
            {
                continue;   // a redelivered message
            }

            // Arrival order is nearly time order; walk back past the few that are newer.
            var after = _points.Last;
            while (after is not null && after.Value.Time > record.Time)
            {
                after = after.Previous;
            }

            if (after is null)
            {
                _points.AddFirst(record);
            }
            else
            {
                _points.AddAfter(after, record);
            }
        }

        Trim();
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<TelemetryBucket>> Aggregate(TelemetryQuery query)
    {
        Trim();
        var buckets = new SortedDictionary<long, Accumulator>();
        foreach (var point in Select(query))
        {
            double? number = null;
            if (query.Path is not null || query.Aggregate != TelemetryAggregate.Count)
            {
                if (TelemetryJson.At(point.Json, query.Path) is not { ValueKind: JsonValueKind.Number } value)
                {
                    continue;
                }

                number = value.GetDouble();
            }

            var start = TelemetryJson.BucketStart(point.Time, query.Bucket);
            buckets[start] = (buckets.TryGetValue(start, out var a) ? a : default).Add(number ?? 1);
        }

        IReadOnlyList<TelemetryBucket> result = [.. buckets.Select(b => new TelemetryBucket(
            new DateTimeOffset(b.Key, TimeSpan.Zero), b.Value.Result(query.Aggregate), b.Value.Count))];
        return Task.FromResult(result);
    }

    public Task<IReadOnlyList<TelemetryPoint>> Points(TelemetryQuery query)
    {
        Trim();
        IReadOnlyList<TelemetryPoint> result = [.. Select(query).Reverse()
            .Select(p => (Point: p, Value: TelemetryJson.At(p.Json, query.Path)))
            .Where(p => p.Value is not null)
            .Take(query.Limit)
            .Select(p => new TelemetryPoint(p.Point.Time, p.Point.Topic, p.Point.RuleName, p.Value!.Value.GetRawText()))];
        return Task.FromResult(result);
    }

    private IEnumerable<TelemetryRecord> Select(TelemetryQuery query) =>
        _points.Where(p => p.Time >= query.From && p.Time < query.To && (query.Topic is null || p.Topic == query.Topic));

    private void Trim()
    {
        var oldest = time.GetUtcNow() - options.Value.Retention;
        while (_points.First is { } first && (_points.Count > options.Value.RingCapacity || first.Value.Time < oldest))
        {
            _ids.Remove((first.Value.MessageId, first.Value.RuleName));
            _points.RemoveFirst();
        }
    }

    private readonly record struct Accumulator(long Count, double Sum, double Min, double Max)
    {
        public Accumulator Add(double value) => Count == 0
            ? new Accumulator(1, value, value, value)
            : new Accumulator(Count + 1, Sum + value, Math.Min(Min, value), Math.Max(Max, value));

        public double Result(TelemetryAggregate aggregate) => aggregate switch
        {
            TelemetryAggregate.Avg => Sum / Count,
            TelemetryAggregate.Min => Min,
            TelemetryAggregate.Max => Max,
            TelemetryAggregate.Sum => Sum,
            _ => Count,
        };
    }
}

/// <summary>The embedded sink: each thing's ring grain.</summary>
internal sealed class RingTelemetryStore(IGrainFactory grains) : ITelemetryStore
{
    public Task AppendAsync(IReadOnlyList<TelemetryRecord> records, CancellationToken cancellationToken) =>
        Task.WhenAll(records.GroupBy(r => r.ThingName, StringComparer.Ordinal)
            .Select(g => grains.GetGrain<ITelemetryRingGrain>(g.Key).Append([.. g])));

    public Task<IReadOnlyList<TelemetryBucket>> AggregateAsync(TelemetryQuery query, CancellationToken cancellationToken) =>
        grains.GetGrain<ITelemetryRingGrain>(query.ThingName).Aggregate(query);

    public Task<IReadOnlyList<TelemetryPoint>> PointsAsync(TelemetryQuery query, CancellationToken cancellationToken) =>
        grains.GetGrain<ITelemetryRingGrain>(query.ThingName).Points(query);
}

/// <summary>What both sinks agree on: bucket boundaries and what a path means.</summary>
internal static class TelemetryJson
{
    /// <summary>The start of the bucket holding <paramref name="time"/>, in UTC ticks: buckets are aligned to the Unix epoch (as PostgreSQL's date_bin with that origin).</summary>
    public static long BucketStart(DateTimeOffset time, TimeSpan bucket)
    {
        var sinceEpoch = time.UtcTicks - DateTimeOffset.UnixEpoch.UtcTicks;
        var index = sinceEpoch >= 0 ? sinceEpoch / bucket.Ticks : ((sinceEpoch + 1) / bucket.Ticks) - 1;
        return DateTimeOffset.UnixEpoch.UtcTicks + (index * bucket.Ticks);
    }

    /// <summary>The JSON value at a path of object keys (or array indexes), or null when it is not there.</summary>
    public static JsonElement? At(byte[] json, IReadOnlyList<string>? path)
    {
        JsonElement element;
        try
        {
            element = JsonSerializer.Deserialize<JsonElement>(json);
        }
        catch (JsonException)
        {
            return null;
        }

        foreach (var segment in path ?? [])
        {
            if (element.ValueKind == JsonValueKind.Object && element.TryGetProperty(segment, out var child))
            {
                element = child;
            }
            else if (element.ValueKind == JsonValueKind.Array && int.TryParse(segment, out var i) && i >= 0 && i < element.GetArrayLength())
            {
                element = element[i];
            }
            else
            {
                return null;
            }
        }

        return element.ValueKind == JsonValueKind.Null ? null : element;
    }
}
