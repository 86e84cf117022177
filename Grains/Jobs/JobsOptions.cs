using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Jobs;

/// <summary>Jobs settings (<c>Iot:Jobs</c>).</summary>
public sealed class JobsOptions
{
    public const string SectionName = "Iot:Jobs";

    /// <summary>How often a job's rollout queues its next executions (the rate is per minute; this is its granularity).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan RolloutTick { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>At most this many executions are queued in one step of a rollout, in parallel.</summary>
    [Range(1, 1000)]
    public int RolloutBatch { get; set; } = 100;

    /// <summary>
    /// At most one write of a job's state per this interval for the reports of its things (each thing waits until its
    /// report is written): a job's state holds an entry per thing, so writing it per report costs its size each time.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:05")]
    public TimeSpan ReportWriteInterval { get; set; } = TimeSpan.FromMilliseconds(250);
}
