using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// PostgreSQL write latency as callers feel it, per store (meter <c>OrleansIot.Storage</c>): each batched statement's
/// time, the items it carried, and the statements that failed. Orleans' grain storage reports its own
/// (<c>orleans-storage-*</c>).
/// </summary>
internal static class StorageMetrics
{
    public const string MeterName = "OrleansIot.Storage";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("iot.storage.write.duration", unit: "ms", description: "Time of one batched write statement, by store");
    private static readonly Counter<long> Items = Meter.CreateCounter<long>("iot.storage.write.items", description: "Items written by batched statements, by store");
    private static readonly Counter<long> Failed = Meter.CreateCounter<long>("iot.storage.write.failed", description: "Batched write statements that failed (their callers saw the error), by store");

    /// <summary>Times one batched write of <paramref name="count"/> items to <paramref name="store"/>.</summary>
    public static async Task<T> TimeAsync<T>(string store, int count, Func<Task<T>> write)
    {
        var tag = new KeyValuePair<string, object?>("store", store);
        var started = Stopwatch.GetTimestamp();
        try
        {
            var result = await write();
            Items.Add(count, tag);
            return result;
        }
        catch
        {
            Failed.Add(1, tag);
            throw;
        }
        finally
        {
            Duration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds, tag);
        }
    }
}
