using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Analytics;

namespace OrleansIot.Grains.Analytics;

/// <summary>Answers analytics queries on whichever node is asked (the store does the work).</summary>
[GrainType("telemetry-query"), Orleans.Concurrency.StatelessWorker]
internal sealed class TelemetryQueryGrain(ITelemetryStore store, IOptions<AnalyticsOptions> options) : Grain, ITelemetryQueryGrain
{
    public Task<IReadOnlyList<TelemetryBucket>> Aggregate(TelemetryQuery query)
    {
        if (query.Bucket < TimeSpan.FromMilliseconds(1) || (query.To - query.From).Ticks / query.Bucket.Ticks >= options.Value.MaxBuckets)
        {
            throw ApiException.Invalid($"{query.From:O} to {query.To:O} in buckets of {query.Bucket} is more than {options.Value.MaxBuckets} buckets (Iot:Analytics:MaxBuckets).");
        }

        return store.AggregateAsync(query, CancellationToken.None);
    }

    public Task<IReadOnlyList<TelemetryPoint>> Points(TelemetryQuery query) => store.PointsAsync(query, CancellationToken.None);
}
