using System.Diagnostics.Metrics;

namespace OrleansIot.Grains.FleetIndex;

/// <summary>The fleet index's instruments (meter <c>OrleansIot.FleetIndex</c>).</summary>
internal static class FleetIndexMetrics
{
    public const string MeterName = "OrleansIot.FleetIndex";

    private static readonly Meter Meter = new(MeterName);

    /// <summary>Index writes that failed (the change itself was stored; the thing reindexes itself shortly after).</summary>
    public static readonly Counter<long> WriteFailed = Meter.CreateCounter<long>("iot.index.write_failed", description: "Fleet-index writes that failed and were scheduled for a reindex");

    /// <summary>Shadow sections written behind (each the latest of its thing in its round).</summary>
    public static readonly Counter<long> WrittenBehind = Meter.CreateCounter<long>("iot.index.written_behind", description: "Shadow sections of the fleet index written behind, one per thing per round");

    /// <summary>Searches that went on without every node writing what it held (a node failing).</summary>
    public static readonly Counter<long> FlushIncomplete = Meter.CreateCounter<long>("iot.index.flush_incomplete", description: "Searches that did not hear from every node before reading the fleet index");

    /// <summary>Things reindexed by the repair after a node's death.</summary>
    public static readonly Counter<long> Repaired = Meter.CreateCounter<long>("iot.index.repaired", description: "Things reindexed because a node died holding their newest shadow section");

    /// <summary>Things that joined or left a dynamic group because their entry changed.</summary>
    public static readonly Counter<long> DynamicMembershipChanges = Meter.CreateCounter<long>("iot.index.dynamic_group_changes", description: "Dynamic thing group joins and leaves");
}
