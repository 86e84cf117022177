using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Things;

public sealed class ThingOptions
{
    public const string SectionName = "Iot:Things";

    /// <summary>
    /// How long usage counters may stay in memory before the thing grain persists them. Together with the gateway's
    /// flush interval this bounds what a crash can lose (docs/architecture.md).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "01:00:00")]
    public TimeSpan UsagePersistInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Days of per-day usage each thing keeps (<c>GET /api/usage</c>); older days are dropped as new ones start.</summary>
    [Range(1, 3660)]
    public int UsageRetentionDays { get; set; } = 90;

    /// <summary>
    /// How long a thing grain stays in memory after its last call (Orleans' idle collection; its default is 15
    /// minutes). A device that stays connected without calling its thing (commands only, keep-alives) then costs no
    /// activation; the next call reads the thing's state back from storage, so devices that report less often than
    /// this pay a state read per report. At least 2 minutes (Orleans collects once a minute).
    /// </summary>
    [Range(typeof(TimeSpan), "00:02:00", "1.00:00:00")]
    public TimeSpan IdleActivationAge { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>
    /// How long after a node's planned stop the connection ends it kept reach their things (history, connected minutes,
    /// the last usage): they start this long after their keeper has them, or is activated again after a restart, so a
    /// fleet reconnecting after a rolling restart does not compete with thousands of thing activations. Then about
    /// 1,000 a second across the cluster.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "01:00:00")]
    public TimeSpan KeptEndsDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Ended connections each thing keeps, newest first (<c>GET /api/things/{name}/status</c>, the console's history).</summary>
    [Range(0, 1000)]
    public int ConnectionHistory { get; set; } = 10;
}
