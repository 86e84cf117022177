using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Artifacts;
using OrleansIot.Grains.Abstractions.Jobs;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Grains.Jobs;

/// <summary>
/// A thing's job executions. Every change is stored before it is answered or announced; then the device hears of it
/// (<c>notify</c> when its pending list changes, <c>notify-next</c> when the head of that list changes), the job hears
/// of device- and timer-made changes (<see cref="IJobGrain.ExecutionChanged"/>; retried from storage if the job could
/// not be reached) and, when enabled, AWS's jobExecution events go out. Timeouts are deadlines on the node's clock,
/// checked on every call and woken by a reminder, so they fire across restarts and node deaths.
/// </summary>
[GrainType("thing-jobs")]
internal sealed partial class ThingJobsGrain(
    [PersistentState("jobs", StorageNames.Default)] IPersistentState<ThingJobsState> state,
    IBrokerPublisher broker,
    ArtifactUrls urls,
    IOptions<RegistryOptions> registry,
    TimeProvider time,
    ILogger<ThingJobsGrain> logger) : Grain, IThingJobsGrain, IThingJobsReports, IRemindable
{
    private const string TimeoutReminder = "job-timeouts";
    private const string ReportReminder = "job-reports";

    /// <summary>AWS's notify lists hold at most 10 entries.</summary>
    private const int NotifyLimit = 10;

    private readonly JobEvents _events = new(registry.Value, broker, time);
    private DateTimeOffset? _reminderDue;
    private bool _reporting;

    private string ThingName => this.GetPrimaryKeyString();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // After a restart or a move: time may have passed, and reports to jobs may be owed.
        await SettleAsync();
    }

    public async Task<JobExecutionRecord> Queue(JobExecutionOrder order)
    {
        await SettleAsync();
        if (state.State.Executions.TryGetValue(order.JobId, out var existing))
        {
            return Record(existing);   // the rollout asked again (a retried call): one execution per job and thing
        }

        var now = time.GetUtcNow();
        var execution = new ExecutionState
        {
            JobId = order.JobId,
            Status = JobStatus.Queued,
            QueuedAt = now,
            LastUpdatedAt = now,
            VersionNumber = 1,
            ExecutionNumber = 1,
            Document = order.Document,
            InProgressTimeoutMinutes = order.InProgressTimeoutInMinutes,
            Retry = [.. order.Retry],
            UrlLifetimeSeconds = order.PresignedUrlExpiresInSec,
            Sequence = ++state.State.Sequence,
        };
        state.State.Executions[order.JobId] = execution;
        await state.WriteStateAsync();
        JobMetrics.Entered(order.JobId, JobStatus.Queued);
        await AnnounceAsync();
        return Record(execution);
    }

    public async Task<PendingJobExecutions> GetPending()
    {
        await SettleAsync();
        var pending = Pending();
        return new PendingJobExecutions(
            [.. pending.Where(e => e.Status == JobStatus.InProgress).Select(Record)],
            [.. pending.Where(e => e.Status == JobStatus.Queued).Select(Record)]);
    }

    public async Task<JobExecutionRecord?> StartNext(IReadOnlyDictionary<string, string>? statusDetails, long? stepTimeoutInMinutes)
    {
        await SettleAsync();
        var details = statusDetails is null ? null : JobRules.CheckStatusDetails(statusDetails);
        JobRules.CheckTimeout(stepTimeoutInMinutes, "stepTimeoutInMinutes");
        var next = Pending().FirstOrDefault();
        if (next is null || next.Status == JobStatus.InProgress)
        {
            return next is null ? null : Record(next);   // AWS: an execution in progress is returned unchanged
        }

        Start(next, details, stepTimeoutInMinutes);
        await CommitAsync(next, before: JobStatus.Queued);
        return Record(next);
    }

    public async Task<JobExecutionRecord?> Describe(string jobId, long? executionNumber)
    {
        await SettleAsync();
        if (jobId == "$next")
        {
            return Pending().FirstOrDefault() is { } next ? Record(next) : null;
        }

        return state.State.Executions.TryGetValue(jobId, out var e) && (executionNumber is null || executionNumber == e.ExecutionNumber) ? Record(e) : null;
    }

    public async Task<JobExecutionRecord> Update(string jobId, JobExecutionUpdate update)
    {
        await SettleAsync();
        if (update.Status is not { } status || !JobStatus.DeviceMaySet(status))
        {
            throw ApiException.Invalid("status must be IN_PROGRESS, SUCCEEDED, FAILED or REJECTED.");
        }

        var details = update.StatusDetails is null ? null : JobRules.CheckStatusDetails(update.StatusDetails);
        JobRules.CheckTimeout(update.StepTimeoutInMinutes, "stepTimeoutInMinutes", allowClear: true);
        if (!state.State.Executions.TryGetValue(jobId, out var e) || (update.ExecutionNumber is { } number && number != e.ExecutionNumber))
        {
            throw ApiException.NotFound($"Job execution of {jobId} on {ThingName} cannot be found.");
        }

        if (update.ExpectedVersion is { } expected && expected != e.VersionNumber)
        {
            throw JobRules.VersionMismatch(expected, e.VersionNumber);
        }

        if (JobStatus.IsTerminal(e.Status))
        {
            throw JobRules.InvalidTransition(jobId, e.Status, status);
        }

        var now = time.GetUtcNow();
        var before = e.Status;
        if (status == JobStatus.InProgress)
        {
            if (e.Status == JobStatus.Queued)
            {
                Start(e, details, update.StepTimeoutInMinutes);
            }
            else
            {
                e.StatusDetails = details ?? e.StatusDetails;
                SetStepTimer(e, update.StepTimeoutInMinutes, now);
                e.VersionNumber++;
                e.LastUpdatedAt = now;
            }
        }
        else
        {
            Finish(e, status, details, now);
        }

        await CommitAsync(e, before: before);
        return Record(e);
    }

    public async Task<JobExecutionRecord?> Cancel(string jobId, bool force, long? expectedVersion, IReadOnlyDictionary<string, string>? statusDetails)
    {
        await SettleAsync();
        var details = statusDetails is null ? null : JobRules.CheckStatusDetails(statusDetails);
        if (!state.State.Executions.TryGetValue(jobId, out var e))
        {
            return null;
        }

        if (expectedVersion is { } expected && expected != e.VersionNumber)
        {
            throw JobRules.VersionMismatch(expected, e.VersionNumber);
        }

        if (JobStatus.IsTerminal(e.Status))
        {
            return Record(e);
        }

        if (e.Status == JobStatus.InProgress && !force)
        {
            throw JobRules.InvalidTransition(jobId, e.Status, JobStatus.Canceled + " (an execution in progress is canceled only with force)");
        }

        e.ForceCanceled = e.Status == JobStatus.InProgress;
        var before = e.Status;
        Finish(e, JobStatus.Canceled, details, time.GetUtcNow(), retry: false);
        await CommitAsync(e, reportToJob: false, before: before);
        return Record(e);
    }

    public async Task<JobExecutionRecord?> Remove(string jobId)
    {
        await SettleAsync();
        if (!state.State.Executions.TryGetValue(jobId, out var e) || e.Status != JobStatus.Queued)
        {
            return state.State.Executions.TryGetValue(jobId, out var other) ? Record(other) : null;
        }

        Finish(e, JobStatus.Removed, null, time.GetUtcNow(), retry: false);
        await CommitAsync(e, reportToJob: false, before: JobStatus.Queued);
        return Record(e);
    }

    public async Task Delete(string jobId, long? executionNumber, bool force)
    {
        await SettleAsync();
        if (!state.State.Executions.TryGetValue(jobId, out var e) || (executionNumber is { } n && n != e.ExecutionNumber))
        {
            throw ApiException.NotFound($"Job execution of {jobId} on {ThingName} cannot be found.");
        }

        if (!JobStatus.IsTerminal(e.Status) && !force)
        {
            throw JobRules.InvalidTransition(jobId, e.Status, "deleted (an execution that is not over is deleted only with force)");
        }

        var record = Record(e);
        state.State.Executions.Remove(jobId);
        state.State.Unreported.Remove(jobId);
        await state.WriteStateAsync();
        _events.Execution("deleted", record);
        await AnnounceAsync();
        await ScheduleTimeoutsAsync();
    }

    public async Task<IReadOnlyList<JobExecutionRecord>> List(string? status)
    {
        await SettleAsync();
        return [.. state.State.Executions.Values
            .Where(e => status is null || e.Status == status)
            .OrderByDescending(e => e.Sequence)
            .Select(Record)];
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName == TimeoutReminder)
        {
            _reminderDue = null;
            await SettleAsync();
        }
        else if (reminderName == ReportReminder)
        {
            state.State.HasReportReminder = true;   // it is registered, whatever the stored flag says
            await ReportPending();
        }
    }

    /// <summary>
    /// Reports changed executions to their jobs, after the turn that changed them (so a device's answer never waits for
    /// its job), interleaved with the thing's other calls. A report the job took is forgotten in memory only: if the
    /// thing stops before its next write, it reports again after activation, and the job ignores what it already has.
    /// A job that cannot be reached is tried again by a reminder until it takes the report.
    /// </summary>
    public async Task ReportPending()
    {
        if (_reporting)
        {
            return;
        }

        _reporting = true;
        var failed = false;
        try
        {
            while (!failed && state.State.Unreported.Count > 0)
            {
                var sent = 0;
                foreach (var jobId in state.State.Unreported.ToList())
                {
                    if (!state.State.Executions.TryGetValue(jobId, out var e))
                    {
                        state.State.Unreported.Remove(jobId);
                        continue;
                    }

                    var change = new JobExecutionChange(ThingName, e.ExecutionNumber, e.VersionNumber, e.Status, e.LastUpdatedAt);
                    try
                    {
                        await GrainFactory.GetGrain<IJobGrain>(jobId).ExecutionChanged(change);
                        sent++;
                        if (state.State.Executions.TryGetValue(jobId, out var now) && now.ExecutionNumber == change.ExecutionNumber && now.VersionNumber == change.VersionNumber)
                        {
                            state.State.Unreported.Remove(jobId);   // not changed again while the report was on its way
                        }
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        LogReportFailed(logger, ex, ThingName, jobId);
                        failed = true;
                    }
                }

                if (sent == 0)
                {
                    break;
                }
            }

            // The reminder table is touched only when a report failed, or after one had failed.
            if (failed && !state.State.HasReportReminder)
            {
                await this.RegisterOrUpdateReminder(ReportReminder, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
                state.State.HasReportReminder = true;
            }
            else if (!failed && state.State.HasReportReminder)
            {
                if (await this.GetReminder(ReportReminder) is { } reminder)
                {
                    await this.UnregisterReminder(reminder);
                }

                state.State.HasReportReminder = false;
            }
        }
        finally
        {
            _reporting = false;
        }
    }

    /// <summary>
    /// Executions that ended count in the thing's usage (a failed call loses the count, logged; the execution is stored).
    /// Not awaited: the thing grain may be waiting on a call that leads here (a dynamic group it left removes its
    /// executions), and waiting for it would deadlock both until the call times out.
    /// </summary>
    private void CountEnded(int executions) => _ = CountEndedAsync(executions);

    private async Task CountEndedAsync(int executions)
    {
        try
        {
            await GrainFactory.GetGrain<IThingGrain>(this.GetPrimaryKeyString()).RecordUsage(new UsageDelta(0, 0, 0, 0, JobExecutions: executions));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            Things.UsageMetrics.Lost("job_executions", executions);
            LogUsageLost(logger, ex, executions, this.GetPrimaryKeyString());
        }
    }

    private void RequestReport()
    {
        if (state.State.Unreported.Count > 0 && !_reporting)
        {
            this.AsReference<IThingJobsReports>().ReportPending().Ignore();
        }
    }

    /// <summary>Times out what is past its deadline and sends the reports the job has not had yet.</summary>
    private async Task SettleAsync()
    {
        var now = time.GetUtcNow();
        var timedOut = state.State.Executions.Values.Where(e => e.Status == JobStatus.InProgress && Deadline(e) is { } d && d <= now).ToList();
        var ended = new List<JobExecutionRecord>();
        foreach (var e in timedOut)
        {
            Finish(e, JobStatus.TimedOut, null, now);
            ended.Add(e.Retried ?? Record(e));
            e.Retried = null;
        }

        if (timedOut.Count > 0)
        {
            await state.WriteStateAsync();
            foreach (var record in ended)
            {
                _events.Execution("timed_out", record);
                JobMetrics.Entered(record.JobId, JobStatus.TimedOut);
                if (record.ExecutionNumber != state.State.Executions[record.JobId].ExecutionNumber)
                {
                    JobMetrics.Entered(record.JobId, JobStatus.Queued);   // retried
                }
            }

            CountEnded(ended.Count);
            await AnnounceAsync();
        }

        RequestReport();
        await ScheduleTimeoutsAsync();
    }

    private void Start(ExecutionState e, Dictionary<string, string>? details, long? stepTimeoutInMinutes)
    {
        var now = time.GetUtcNow();
        e.Status = JobStatus.InProgress;
        e.StartedAt ??= now;
        e.StatusDetails = details ?? e.StatusDetails;
        if (e.InProgressTimeoutMinutes is { } minutes)
        {
            e.InProgressDeadline ??= now.AddMinutes(minutes);
        }

        SetStepTimer(e, stepTimeoutInMinutes, now);
        e.VersionNumber++;
        e.LastUpdatedAt = now;
    }

    /// <summary>A new step timer replaces the last one; -1 clears it; it never ends after the in-progress deadline (AWS).</summary>
    private static void SetStepTimer(ExecutionState e, long? minutes, DateTimeOffset now)
    {
        if (minutes == -1)
        {
            e.StepDeadline = null;
        }
        else if (minutes is { } m)
        {
            var step = now.AddMinutes(m);
            e.StepDeadline = e.InProgressDeadline is { } limit && limit < step ? limit : step;
        }
    }

    /// <summary>Ends the execution; a FAILED or TIMED_OUT one is queued again while the job's retry criteria allow.</summary>
    private void Finish(ExecutionState e, string status, Dictionary<string, string>? details, DateTimeOffset now, bool retry = true)
    {
        e.Status = status;
        e.StatusDetails = details ?? e.StatusDetails;
        e.StepDeadline = null;
        e.InProgressDeadline = null;
        e.VersionNumber++;
        e.LastUpdatedAt = now;
        state.State.Unreported.Add(e.JobId);
        if (retry && status is JobStatus.Failed or JobStatus.TimedOut && RetryAllowed(e, status))
        {
            e.RetriesUsed[status] = e.RetriesUsed.GetValueOrDefault(status) + 1;
            e.Retried = Record(e);   // its end is reported and announced before the new attempt
            e.ExecutionNumber++;
            e.Status = JobStatus.Queued;
            e.StatusDetails = new(StringComparer.Ordinal);
            e.StartedAt = null;
            e.QueuedAt = now;
            e.VersionNumber = 1;
            e.Sequence = ++state.State.Sequence;
        }
    }

    private static bool RetryAllowed(ExecutionState e, string status)
    {
        var used = e.RetriesUsed.GetValueOrDefault(status);
        var usedAll = e.RetriesUsed.Values.Sum();
        return e.Retry.Any(c => (c.FailureType == status && used < c.NumberOfRetries) || (c.FailureType == "ALL" && usedAll < c.NumberOfRetries));
    }

    /// <summary>Stores the change, then tells the job (device- and timer-made changes), the device and the event topics.</summary>
    private async Task CommitAsync(ExecutionState e, bool reportToJob = true, string? before = null)
    {
        if (!reportToJob)
        {
            state.State.Unreported.Remove(e.JobId);
        }
        else
        {
            state.State.Unreported.Add(e.JobId);
        }

        var retried = e.Retried;
        e.Retried = null;
        await state.WriteStateAsync();
        if (retried is not null)
        {
            _events.Execution(retried.Status.ToLowerInvariant(), retried);
            JobMetrics.Entered(e.JobId, retried.Status);
            JobMetrics.Entered(e.JobId, JobStatus.Queued);
            CountEnded(1);
        }
        else if (e.Status != before)
        {
            JobMetrics.Entered(e.JobId, e.Status);
            if (JobStatus.IsTerminal(e.Status))
            {
                CountEnded(1);
            }
        }

        if (JobStatus.IsTerminal(e.Status))
        {
            _events.Execution(e.Status.ToLowerInvariant(), Record(e));
        }

        await AnnounceAsync();
        RequestReport();
        await ScheduleTimeoutsAsync();
    }

    /// <summary>
    /// Publishes <c>notify</c> when the pending list changed and <c>notify-next</c> when its head changed (AWS: only
    /// when the identity of the next job changes), after the change is stored.
    /// </summary>
    private async Task AnnounceAsync()
    {
        var pending = Pending();
        var now = time.GetUtcNow();
        var signature = string.Join(',', pending.Select(e => $"{e.JobId}:{e.ExecutionNumber}:{e.Status}"));
        if (signature != state.State.LastNotify)
        {
            var jobs = new JsonObject();
            var inProgress = pending.Where(e => e.Status == JobStatus.InProgress).Take(NotifyLimit).ToList();
            var queued = pending.Where(e => e.Status == JobStatus.Queued).Take(NotifyLimit - inProgress.Count).ToList();
            if (inProgress.Count > 0)
            {
                jobs[JobStatus.InProgress] = new JsonArray([.. inProgress.Select(e => (JsonNode)JobJson.Summary(Record(e)))]);
            }

            if (queued.Count > 0)
            {
                jobs[JobStatus.Queued] = new JsonArray([.. queued.Select(e => (JsonNode)JobJson.Summary(Record(e)))]);
            }

            Publish("notify", new JsonObject { ["timestamp"] = now.ToUnixTimeSeconds(), ["jobs"] = jobs });
            JobMetrics.Notified("notify");
            state.State.LastNotify = signature;
        }

        var head = pending.FirstOrDefault();
        var next = head is null ? "" : $"{head.JobId}:{head.ExecutionNumber}";
        if (next != state.State.LastNext)
        {
            var body = new JsonObject { ["timestamp"] = now.ToUnixTimeSeconds() };
            if (head is not null)
            {
                var execution = JobJson.Execution(Record(head), await urls.ExpandAsync(head.Document, head.UrlLifetimeSeconds), now);
                execution.Remove("thingName");
                execution.Remove("statusDetails");
                execution.Remove("startedAt");
                execution.Remove("approximateSecondsBeforeTimedOut");
                body["execution"] = execution;
            }

            Publish("notify-next", body);
            JobMetrics.Notified("notify-next");
            state.State.LastNext = next;
        }
    }

    private void Publish(string topic, JsonObject body) =>
        broker.Publish($"$aws/things/{ThingName}/jobs/{topic}", JobJson.Utf8(body), 1);

    /// <summary>Keeps one reminder at the earliest deadline; none when nothing can time out.</summary>
    private async Task ScheduleTimeoutsAsync()
    {
        var earliest = state.State.Executions.Values.Where(e => e.Status == JobStatus.InProgress).Select(Deadline).Where(d => d is not null).Min();
        if (earliest is null)
        {
            if (state.State.HasReminder)
            {
                if (await this.GetReminder(TimeoutReminder) is { } reminder)
                {
                    await this.UnregisterReminder(reminder);
                }

                state.State.HasReminder = false;
                _reminderDue = null;
            }

            return;
        }

        if (_reminderDue == earliest)
        {
            return;
        }

        var due = earliest.Value - time.GetUtcNow();
        // Reminders tick at least once a minute after the due time, so a missed tick is made up.
        await this.RegisterOrUpdateReminder(TimeoutReminder, due > TimeSpan.FromSeconds(1) ? due : TimeSpan.FromSeconds(1), TimeSpan.FromMinutes(1));
        _reminderDue = earliest;
        if (!state.State.HasReminder)
        {
            state.State.HasReminder = true;
            await state.WriteStateAsync();
        }
    }

    private static DateTimeOffset? Deadline(ExecutionState e) =>
        (e.StepDeadline, e.InProgressDeadline) switch
        {
            ({ } step, { } all) => step < all ? step : all,
            ({ } step, null) => step,
            (null, var all) => all,
        };

    /// <summary>The pending executions: in progress first, then queued, each in queue order.</summary>
    private List<ExecutionState> Pending() =>
        [.. state.State.Executions.Values
            .Where(e => !JobStatus.IsTerminal(e.Status))
            .OrderBy(e => e.Status == JobStatus.InProgress ? 0 : 1)
            .ThenBy(e => e.Sequence)];

    private JobExecutionRecord Record(ExecutionState e) => new(
        e.JobId, ThingName, e.Status, e.StatusDetails, e.QueuedAt, e.StartedAt, e.LastUpdatedAt, e.VersionNumber, e.ExecutionNumber,
        e.ForceCanceled, Deadline(e), e.Document, e.UrlLifetimeSeconds);

    [LoggerMessage(EventId = 2045, Level = LogLevel.Warning, Message = "{Count} ended job executions of thing {ThingName} were not added to its usage")]
    private static partial void LogUsageLost(ILogger logger, Exception exception, int count, string thingName);

    [LoggerMessage(EventId = 2040, Level = LogLevel.Warning, Message = "Thing {ThingName} could not report its execution of job {JobId} to the job; it tries again on its next call or reminder")]
    private static partial void LogReportFailed(ILogger logger, Exception exception, string thingName, string jobId);
}

[GenerateSerializer, Alias("OrleansIot.ThingJobsState")]
public sealed class ThingJobsState
{
    [Id(0)] public Dictionary<string, ExecutionState> Executions { get; set; } = new(StringComparer.Ordinal);

    /// <summary>Jobs whose execution here changed and has not been reported to the job grain yet.</summary>
    [Id(1)] public HashSet<string> Unreported { get; set; } = new(StringComparer.Ordinal);

    [Id(2)] public long Sequence { get; set; }
    [Id(3)] public string LastNotify { get; set; } = "";
    [Id(4)] public string LastNext { get; set; } = "";
    [Id(5)] public bool HasReminder { get; set; }

    /// <summary>Whether the report reminder is registered (a report failed); written with the next change.</summary>
    [Id(6)] public bool HasReportReminder { get; set; }
}

[GenerateSerializer, Alias("OrleansIot.ExecutionState")]
public sealed class ExecutionState
{
    [Id(0)] public string JobId { get; set; } = "";
    [Id(1)] public string Status { get; set; } = JobStatus.Queued;
    [Id(2)] public Dictionary<string, string> StatusDetails { get; set; } = new(StringComparer.Ordinal);
    [Id(3)] public DateTimeOffset QueuedAt { get; set; }
    [Id(4)] public DateTimeOffset? StartedAt { get; set; }
    [Id(5)] public DateTimeOffset LastUpdatedAt { get; set; }
    [Id(6)] public long VersionNumber { get; set; }
    [Id(7)] public long ExecutionNumber { get; set; }
    [Id(8)] public bool ForceCanceled { get; set; }
    [Id(9)] public string Document { get; set; } = "{}";
    [Id(10)] public long? InProgressTimeoutMinutes { get; set; }
    [Id(11)] public DateTimeOffset? InProgressDeadline { get; set; }
    [Id(12)] public DateTimeOffset? StepDeadline { get; set; }
    [Id(13)] public List<JobRetryCriteria> Retry { get; set; } = [];
    [Id(14)] public Dictionary<string, int> RetriesUsed { get; set; } = new(StringComparer.Ordinal);
    [Id(15)] public int? UrlLifetimeSeconds { get; set; }

    /// <summary>Queue order within the thing.</summary>
    [Id(16)] public long Sequence { get; set; }

    /// <summary>The attempt that just ended before a retry queued a new one (not stored past the commit).</summary>
    [Id(17)] public JobExecutionRecord? Retried { get; set; }
}

/// <summary>The thing-jobs grain's call to itself that reports changes to jobs after the turn that made them.</summary>
[Alias("OrleansIot.IThingJobsReports")]
internal interface IThingJobsReports : IGrainWithStringKey
{
    [Alias("ReportPending"), Orleans.Concurrency.OneWay, Orleans.Concurrency.AlwaysInterleave]
    Task ReportPending();
}
