using System.Diagnostics.Metrics;

namespace OrleansIot.Grains.FleetIndex;

/// <summary>The fleet index's instruments (meter <c>OrleansIot.FleetIndex</c>).</summary>
internal static class FleetIndexMetrics
{
    public const string MeterName = "OrleansIot.FleetIndex";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Index writes that failed (the change itself was stored; the thing reindexes itself shortly after).</summary>
    public static readonly Counter<long> WriteFailed = Meter.CreateCounter<long>("iot.index.write_failed", description: "Fleet-index writes that failed and were scheduled for a reindex");

    /// <summary>Things that joined or left a dynamic group because their entry changed.</summary>
    public static readonly Counter<long> DynamicMembershipChanges = Meter.CreateCounter<long>("iot.index.dynamic_group_changes", description: "Dynamic thing group joins and leaves");
}
