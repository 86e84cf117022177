using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Analytics;

/// <summary>The analytics sink (<c>Iot:Analytics</c>).</summary>
public sealed class AnalyticsOptions
{
    public const string SectionName = "Iot:Analytics";

    /// <summary>How long points are kept. PostgreSQL drops whole days of partitions and deletes the rest of the oldest day.</summary>
    [Range(typeof(TimeSpan), "00:01:00", "3650.00:00:00")]
    public TimeSpan Retention { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Embedded mode: the newest points kept per thing (older ones fall out of the ring).</summary>
    [Range(1, 1_000_000)]
    public int RingCapacity { get; set; } = 10_000;

    /// <summary>The most buckets one query may ask for (a year of minutes is refused, a day of them is not).</summary>
    [Range(1, 1_000_000)]
    public int MaxBuckets { get; set; } = 10_000;
}
