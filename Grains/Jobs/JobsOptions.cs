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

}
