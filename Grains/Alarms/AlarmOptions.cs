using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Alarms;

/// <summary>Alarms (<c>Iot:Alarms</c>).</summary>
public sealed class AlarmOptions
{
    public const string SectionName = "Iot:Alarms";

    /// <summary>The shortest period an alarm may have (CloudWatch: 10 s for high-resolution alarms).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan MinimumPeriod { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Most alarms.</summary>
    [Range(1, 100_000)]
    public int MaxAlarms { get; set; } = 1000;

    /// <summary>A node's report older than this is not counted in a metric's datapoint (the node is gone).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "01:00:00")]
    public TimeSpan NodeReportFreshness { get; set; } = TimeSpan.FromSeconds(15);
}
