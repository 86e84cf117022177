using System.Diagnostics.Metrics;

namespace OrleansIot.Grains.Jobs;

/// <summary>
/// The jobs' instruments (meter <c>OrleansIot.Jobs</c>): executions entering each state, per job, which is what AWS's
/// per-job CloudWatch metrics count (<c>QueuedJobExecutionCount</c>, <c>SuccededJobExecutionCount</c>, …), and the
/// notifications sent to devices.
/// </summary>
internal static class JobMetrics
{
    public const string MeterName = "OrleansIot.Jobs";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> ExecutionsCounter = Meter.CreateCounter<long>("iot.jobs.executions", description: "Job executions that entered a state, by job and state");
    private static readonly Counter<long> NotificationsCounter = Meter.CreateCounter<long>("iot.jobs.notifications", description: "notify and notify-next messages published to devices");

    public static void Entered(string jobId, string status) =>
        ExecutionsCounter.Add(1, new KeyValuePair<string, object?>("job", jobId), new KeyValuePair<string, object?>("status", status));

    public static void Notified(string kind) => NotificationsCounter.Add(1, new KeyValuePair<string, object?>("kind", kind));
}
