using System.Diagnostics.Metrics;

namespace OrleansIot.Grains.Things;

/// <summary>
/// Usage counts that could not be added to a thing (meter <c>OrleansIot.Usage</c>): the rule evaluators' and the jobs'
/// counts whose call to the thing grain failed. Each is also logged with the thing; the usage API is then short by it.
/// </summary>
internal static class UsageMetrics
{
    private static readonly Meter Meter = new("OrleansIot.Usage");
    private static readonly Counter<long> LostCounter = Meter.CreateCounter<long>("iot.usage.lost", description: "Usage counts not added to their thing (the call failed), by counter");

    public static void Lost(string counter, long count) => LostCounter.Add(count, new KeyValuePair<string, object?>("counter", counter));
}
