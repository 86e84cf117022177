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
/// A job: resolves its targets to things, rolls executions out to them at its rate (a token bucket refilled on the
/// node's clock, stepped by a grain timer and kept alive across restarts by a reminder), keeps the newest state of
/// each thing's execution in its slices (<see cref="IJobShardGrain"/>) and their counts in memory for DescribeJob and
/// the abort criteria, and cancels or deletes executions on request.
/// Things report their changes through <see cref="ExecutionChanged"/>, which interleaves with the job's own calls to
/// them and writes only the thing's slice, so interleaved turns never write the job's state.
/// </summary>
[GrainType("job")]
internal sealed partial class JobGrain(
    [PersistentState("job", StorageNames.Default)] IPersistentState<JobState> state,
    IOptions<JobsOptions> options,
    IOptions<RegistryOptions> registry,
    IBrokerPublisher broker,
    TimeProvider time,
    ILogger<JobGrain> logger) : Grain, IJobGrain, IRemindable
{
    private const string RolloutReminder = "job-rollout";
    private const int ListPageSize = 250;

    private readonly JobEvents _events = new(registry.Value, broker, time);
    private IGrainTimer? _timer;

    // The number of things in each state: the sum of the job's slices (IJobShardGrain), rebuilt at activation and
    // kept by the deltas the slices return; not stored with the job.
    private readonly Dictionary<string, int> _counts = new(StringComparer.Ordinal);

    private string JobId => this.GetPrimaryKeyString();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (state.State.Exists)
        {
            foreach (var counts in await Task.WhenAll(AllShards().Select(shard => shard.Counts())))
            {
                foreach (var (status, count) in counts)
                {
                    _counts[status] = _counts.GetValueOrDefault(status) + count;
                }
            }
        }

        await KeepRollingAsync();
    }

    private IEnumerable<IJobShardGrain> AllShards() =>
        Enumerable.Range(0, IJobShardGrain.Shards).Select(i => GrainFactory.GetGrain<IJobShardGrain>($"{JobId}/{i}"));

    private IJobShardGrain ShardOf(string thingName) => GrainFactory.GetGrain<IJobShardGrain>(IJobShardGrain.KeyOf(JobId, thingName));

    private int Count(string status) => _counts.GetValueOrDefault(status);

    private void Apply(IEnumerable<JobCountDelta> deltas)
    {
        foreach (var d in deltas)
        {
            if (d.From is { } from)
            {
                _counts[from] = Count(from) - 1;
            }

            if (d.To is { } to)
            {
                _counts[to] = Count(to) + 1;
            }
        }
    }

    /// <summary>Records what the job learned of some things' executions in their slices, and counts it.</summary>
    private async Task MergeAsync(IEnumerable<JobThingChange> changes)
    {
        var byShard = changes.GroupBy(c => IJobShardGrain.KeyOf(JobId, c.ThingName));
        foreach (var deltas in await Task.WhenAll(byShard.Select(g => GrainFactory.GetGrain<IJobShardGrain>(g.Key).Merge([.. g]))))
        {
            Apply(deltas);
        }
    }

    private static JobThingChange Change(string thing, JobExecutionRecord e) => new(thing, e.ExecutionNumber, e.VersionNumber, e.Status, e.QueuedAt, e.LastUpdatedAt);

    public async Task<JobRecord> Create(JobSpec spec)
    {
        JobRules.CheckJobId(JobId);
        if (state.State.Exists)
        {
            throw ApiException.AlreadyExists($"Job {JobId} already exists.");
        }

        spec = await FromTemplateAsync(spec);
        var (document, artifacts, groups, things) = await CheckAsync(spec);
        var now = time.GetUtcNow();
        var s = state.State;
        s.Exists = true;
        s.Status = JobStatus.InProgress;
        s.TargetSelection = spec.TargetSelection ?? "SNAPSHOT";
        s.Targets = [.. spec.Targets];
        s.Description = spec.Description;
        s.Document = document;
        s.CreatedAt = s.LastUpdatedAt = now;
        s.Rollout = spec.Rollout;
        s.Abort = [.. spec.Abort ?? []];
        s.InProgressTimeoutMinutes = spec.InProgressTimeoutInMinutes;
        s.Retry = [.. spec.Retry ?? []];
        s.UrlLifetimeSeconds = spec.PresignedUrlExpiresInSec;
        s.JobTemplateId = spec.JobTemplateId;
        s.Pending = things;
        s.Tokens = 1;
        s.RefilledAt = now;
        await PersistAsync();
        await GrainFactory.GetGrain<IJobCatalogGrain>(0).Add(JobId, groups, artifacts, s.TargetSelection == "CONTINUOUS");
        await KeepRollingAsync();
        this.AsReference<IJobGrain>().Pump().Ignore();
        return Record();
    }

    public Task<JobRecord?> Describe() => Task.FromResult(state.State.Exists ? Record() : null);

    public async Task<JobRecord> Update(JobChange change)
    {
        RequireJob();
        if (state.State.Status != JobStatus.InProgress)
        {
            throw new ApiException(409, "InvalidStateTransitionException", $"Job {JobId} is {state.State.Status}; only a job in progress can be updated.");
        }

        if (change.Description is { Length: > JobRules.MaxDescription })
        {
            throw ApiException.Invalid($"description is longer than {JobRules.MaxDescription} characters.");
        }

        JobRules.CheckRollout(change.Rollout);
        JobRules.CheckAbort(change.Abort);
        JobRules.CheckTimeout(change.InProgressTimeoutInMinutes, "inProgressTimeoutInMinutes");
        JobRules.CheckUrlLifetime(change.PresignedUrlExpiresInSec);
        var s = state.State;
        s.Description = change.Description ?? s.Description;
        s.Rollout = change.Rollout ?? s.Rollout;
        s.Abort = change.Abort is null ? s.Abort : [.. change.Abort];
        s.InProgressTimeoutMinutes = change.InProgressTimeoutInMinutes ?? s.InProgressTimeoutMinutes;
        s.UrlLifetimeSeconds = change.PresignedUrlExpiresInSec ?? s.UrlLifetimeSeconds;
        s.LastUpdatedAt = time.GetUtcNow();
        await PersistAsync();
        return Record();
    }

    public async Task<JobRecord> Cancel(string? reasonCode, string? comment, bool force)
    {
        RequireJob();
        var s = state.State;
        if (s.Status == JobStatus.Completed || (s.Status == JobStatus.Canceled && (!force || s.ForceCanceled)))
        {
            throw new ApiException(409, "InvalidStateTransitionException", $"Job {JobId} is already {s.Status}{(s.Status == JobStatus.Canceled ? "; cancel it again with force to cancel executions in progress" : "")}.");
        }

        if (reasonCode is { Length: > 128 } || comment is { Length: > JobRules.MaxDescription })
        {
            throw ApiException.Invalid($"reasonCode is at most 128 characters and comment at most {JobRules.MaxDescription}.");
        }

        await CancelAsync(reasonCode, comment, force);
        return Record();
    }

    public async Task Delete(bool force)
    {
        RequireJob();
        if (state.State.Status == JobStatus.InProgress && !force)
        {
            throw new ApiException(409, "InvalidStateTransitionException", $"Job {JobId} is in progress; delete it with force, or cancel it first.");
        }

        var record = Record();
        state.State.Pending.Clear();
        var things = (await Task.WhenAll(AllShards().Select(shard => shard.All()))).SelectMany(t => t).ToList();
        foreach (var batch in things.Chunk(options.Value.RolloutBatch))
        {
            await Task.WhenAll(batch.Select(async thing =>
            {
                try
                {
                    await GrainFactory.GetGrain<IThingJobsGrain>(thing).Delete(JobId, null, force: true);
                }
                catch (ApiException ex) when (ex.Status == 404)
                {
                    // already deleted (DeleteJobExecution) or a retried delete
                }
            }));
        }

        await Task.WhenAll(AllShards().Select(shard => shard.Clear()));
        _counts.Clear();
        await GrainFactory.GetGrain<IJobCatalogGrain>(0).Remove(JobId);
        await StopRollingAsync();
        await state.ClearStateAsync();
        state.State = new JobState();
        _events.Job("deleted", record);
    }

    public async Task<JobPage<JobThingStatus>> ListExecutions(string? status, string? nextToken, int maxResults)
    {
        RequireJob();
        var page = (await Task.WhenAll(AllShards().Select(shard => shard.Page(status, nextToken, maxResults + 1))))
            .SelectMany(p => p)
            .OrderBy(t => t.ThingName, StringComparer.Ordinal)
            .Take(maxResults + 1)
            .ToList();
        return page.Count > maxResults
            ? new JobPage<JobThingStatus>(page[..maxResults], page[maxResults - 1].ThingName)
            : new JobPage<JobThingStatus>(page, null);
    }

    public async Task ExecutionChanged(JobExecutionChange change)
    {
        if (!state.State.Exists)
        {
            return;
        }

        // Stored in the thing's slice before this returns (the thing then forgets the report); the job's own state
        // holds no per-thing entry, so nothing of the job is written here.
        var deltas = await ShardOf(change.ThingName).Merge([new JobThingChange(change.ThingName, change.ExecutionNumber, change.VersionNumber, change.Status, null, change.At)]);
        Apply(deltas);
        if (deltas.Count > 0 && JobStatus.IsTerminal(change.Status))
        {
            // Abort criteria and completion are decided in a turn of their own (they call things, which may be
            // the caller of this interleaved call).
            this.AsReference<IJobGrain>().Pump().Ignore();
        }
    }

    public async Task ExecutionDeleted(string thingName, long executionNumber)
    {
        if (state.State.Exists && await ShardOf(thingName).Remove(thingName, executionNumber) is { } delta)
        {
            Apply([delta]);
        }
    }

    public async Task ThingJoined(string thingName)
    {
        var s = state.State;
        if (!s.Exists || s.Status != JobStatus.InProgress || s.TargetSelection != "CONTINUOUS" || s.Pending.Contains(thingName)
            || await ShardOf(thingName).Get(thingName) is not null)
        {
            return;
        }

        s.Pending.Add(thingName);
        await PersistAsync();
        await KeepRollingAsync();
        this.AsReference<IJobGrain>().Pump().Ignore();
    }

    public async Task ThingLeft(string thingName)
    {
        var s = state.State;
        if (!s.Exists || s.TargetSelection != "CONTINUOUS")
        {
            return;
        }

        if (s.Pending.Remove(thingName))
        {
            await PersistAsync();
        }

        if (await ShardOf(thingName).Get(thingName) is { Status: JobStatus.Queued }
            && await GrainFactory.GetGrain<IThingJobsGrain>(thingName).Remove(JobId) is { } removed)
        {
            await MergeAsync([Change(thingName, removed)]);
        }
    }

    public async Task Pump()
    {
        if (!state.State.Exists)
        {
            return;
        }

        await CheckAbortAsync();
        await CancelExecutionsAsync();
        var more = await RollOutAsync();
        await CheckCompletedAsync();
        await KeepRollingAsync();
        if (more)
        {
            this.AsReference<IJobGrain>().Pump().Ignore();
        }
    }

    public Task ReceiveReminder(string reminderName, TickStatus status) =>
        reminderName == RolloutReminder ? Pump() : Task.CompletedTask;

    /// <summary>A job made from a template takes the template's document (its parameters filled in) and every setting the request does not give.</summary>
    private async Task<JobSpec> FromTemplateAsync(JobSpec spec)
    {
        if (spec.JobTemplateId is not { } templateId)
        {
            return spec.DocumentParameters is { Count: > 0 }
                ? throw ApiException.Invalid("documentParameters are for jobs made from a template (jobTemplateArn).")
                : spec;
        }

        if (spec.Document is not null || spec.DocumentSource is not null)
        {
            throw ApiException.Invalid("A job made from a template takes the template's document: give jobTemplateArn or a document, not both.");
        }

        var template = await GrainFactory.GetGrain<IJobTemplateGrain>(templateId).Describe()
            ?? throw ApiException.NotFound($"Job template {templateId} cannot be found.");
        return spec with
        {
            Document = JobTemplateGrain.Substitute(template.Document, spec.DocumentParameters),
            Description = spec.Description ?? template.Description,
            Rollout = spec.Rollout ?? template.Rollout,
            Abort = spec.Abort ?? template.Abort,
            InProgressTimeoutInMinutes = spec.InProgressTimeoutInMinutes ?? template.InProgressTimeoutInMinutes,
            Retry = spec.Retry is { Count: > 0 } ? spec.Retry : template.Retry,
            PresignedUrlExpiresInSec = spec.PresignedUrlExpiresInSec ?? template.PresignedUrlExpiresInSec,
        };
    }

    /// <summary>Checks a spec and resolves its targets to things (in target order, each once).</summary>
    private async Task<(string Document, List<string> Artifacts, List<string> Groups, List<string> Things)> CheckAsync(JobSpec spec)
    {
        if (spec.Targets is not { Count: > 0 } || spec.Targets.Count > JobRules.MaxTargets)
        {
            throw ApiException.Invalid($"targets must name 1 to {JobRules.MaxTargets} things or thing groups.");
        }

        if (spec.DocumentSource is not null)
        {
            throw ApiException.Invalid("documentSource (a document in S3) is not supported: give the document itself, with ${iot:artifact-url:<artifactId>} where a device downloads a stored artifact.");
        }

        var document = spec.Document ?? throw ApiException.Invalid("document is required.");
        JobRules.CheckDocument(document);
        if (spec.Description is { Length: > JobRules.MaxDescription })
        {
            throw ApiException.Invalid($"description is longer than {JobRules.MaxDescription} characters.");
        }

        if (spec.TargetSelection is not (null or "SNAPSHOT" or "CONTINUOUS"))
        {
            throw ApiException.Invalid("targetSelection must be SNAPSHOT or CONTINUOUS.");
        }

        JobRules.CheckRollout(spec.Rollout);
        JobRules.CheckAbort(spec.Abort);
        JobRules.CheckTimeout(spec.InProgressTimeoutInMinutes, "inProgressTimeoutInMinutes");
        JobRules.CheckRetry(spec.Retry);
        JobRules.CheckUrlLifetime(spec.PresignedUrlExpiresInSec);

        var artifacts = ArtifactUrls.Referenced(document).Distinct(StringComparer.Ordinal).ToList();
        foreach (var artifact in artifacts)
        {
            if (await GrainFactory.GetGrain<IArtifactGrain>(artifact).Describe() is null)
            {
                throw ApiException.Invalid($"The job document refers to artifact {artifact}, which does not exist.");
            }
        }

        var groups = new List<string>();
        var things = new List<string>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var target in spec.Targets)
        {
            var (kind, name) = ParseTarget(target);
            if (kind == "thing")
            {
                if (await GrainFactory.GetGrain<IThingGrain>(name).DescribeThing() is null)
                {
                    throw ApiException.NotFound($"Target {target}: thing {name} cannot be found.");
                }

                if (seen.Add(name))
                {
                    things.Add(name);
                }

                continue;
            }

            if (await GrainFactory.GetGrain<IThingGroupGrain>(name).Describe() is null)
            {
                throw ApiException.NotFound($"Target {target}: thing group {name} cannot be found.");
            }

            groups.Add(name);
            string? token = null;
            do
            {
                var page = await GrainFactory.GetGrain<IRegistryQueryGrain>(0).ListThingsInThingGroup(name, recursive: true, token, ListPageSize);
                things.AddRange(page.Items.Where(seen.Add));
                token = page.NextToken;
            }
            while (token is not null);
        }

        return (document, artifacts, groups, things);
    }

    /// <summary>A target ARN: <c>arn:aws:iot:{region}:{account}:thing/{name}</c> or <c>…:thinggroup/{name}</c>.</summary>
    private static (string Kind, string Name) ParseTarget(string arn)
    {
        var parts = arn.Split(':', 6);
        if (parts is ["arn", _, "iot", _, _, var resource] && resource.IndexOf('/', StringComparison.Ordinal) is > 0 and var slash
            && resource[..slash] is "thing" or "thinggroup" && slash < resource.Length - 1)
        {
            return (resource[..slash], resource[(slash + 1)..]);
        }

        throw ApiException.Invalid($"Target '{arn}' is not a thing or thing group ARN (arn:aws:iot:<region>:<account>:thing/<name> or thinggroup/<name>).");
    }

    /// <summary>Queues the next executions the rate allows; true when more could go at once.</summary>
    private async Task<bool> RollOutAsync()
    {
        var s = state.State;
        if (s.Status != JobStatus.InProgress || s.Pending.Count == 0)
        {
            return false;
        }

        var now = time.GetUtcNow();
        var rate = CurrentRate();
        int allowed;
        if (rate is null)
        {
            allowed = s.Pending.Count;
        }
        else
        {
            var elapsed = now - (s.RefilledAt ?? now);
            s.Tokens = Math.Min(Math.Max(rate.Value, 1), s.Tokens + (rate.Value * Math.Max(0, elapsed.TotalMinutes)));
            s.RefilledAt = now;
            allowed = (int)Math.Floor(s.Tokens + 1e-9);   // sixths of a token add up to 0.999…: count them as whole
        }

        var batch = s.Pending.Take(Math.Min(allowed, options.Value.RolloutBatch)).ToList();
        if (batch.Count == 0)
        {
            return false;
        }

        var order = new JobExecutionOrder(JobId, s.Document, s.InProgressTimeoutMinutes, s.Retry, s.UrlLifetimeSeconds);
        var results = await Task.WhenAll(batch.Select(async thing =>
        {
            try
            {
                return (thing, await GrainFactory.GetGrain<IThingJobsGrain>(thing).Queue(order));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogQueueFailed(logger, ex, JobId, thing);
                return (thing, (JobExecutionRecord?)null);
            }
        }));
        var queued = results.Where(r => r.Item2 is not null).Select(r => (Thing: r.thing, Execution: r.Item2!)).ToList();
        await MergeAsync(queued.Select(q => Change(q.Thing, q.Execution)));
        var done = queued.Select(q => q.Thing).ToHashSet(StringComparer.Ordinal);
        s.Pending.RemoveAll(done.Contains);   // the others stay pending: the next step tries them again
        s.Notified += done.Count;
        if (rate is not null)
        {
            s.Tokens -= done.Count;
        }

        await PersistAsync();
        return s.Pending.Count > 0 && (rate is null || s.Tokens + 1e-9 >= 1) && results.Any(r => r.Item2 is not null);
    }

    /// <summary>AWS's rate: maximumPerMinute, or an exponential rate multiplied per threshold reached (capped at maximumPerMinute or 1,000); null: no limit.</summary>
    private double? CurrentRate()
    {
        var rollout = state.State.Rollout;
        if (rollout?.ExponentialRate is { } e)
        {
            var count = e.NumberOfNotifiedThings is { } notified
                ? state.State.Notified / notified
                : Count(JobStatus.Succeeded) / e.NumberOfSucceededThings!.Value;
            return Math.Min(rollout.MaximumPerMinute ?? JobRules.MaxRatePerMinute, e.BaseRatePerMinute * Math.Pow(e.IncrementFactor, count));
        }

        return rollout?.MaximumPerMinute;
    }

    /// <summary>
    /// Cancels the job when an abort criterion is met: of the things whose execution ended (succeeded, failed, rejected,
    /// timed out), at least <c>minNumberOfExecutedThings</c>, and the failures of the criterion's type reached its
    /// percentage. Executions in progress continue (AWS).
    /// </summary>
    private async Task CheckAbortAsync()
    {
        var s = state.State;
        if (s.Status != JobStatus.InProgress || s.Abort.Count == 0)
        {
            return;
        }

        var failed = Count(JobStatus.Failed) + Count(JobStatus.Rejected) + Count(JobStatus.TimedOut);
        var ended = Count(JobStatus.Succeeded) + failed;
        foreach (var c in s.Abort)
        {
            var failures = c.FailureType == "ALL" ? failed : Count(c.FailureType);
            if (ended >= c.MinNumberOfExecutedThings && failures * 100.0 >= c.ThresholdPercentage * ended)
            {
                LogAborted(logger, JobId, failures, ended, c.FailureType);
                await CancelAsync("ABORTED", $"Canceled by its abort criteria: {failures} of {ended} executed things ended {c.FailureType} (threshold {c.ThresholdPercentage} %).", force: false);
                return;
            }
        }
    }

    private async Task CancelAsync(string? reasonCode, string? comment, bool force)
    {
        var s = state.State;
        var wasInProgress = s.Status == JobStatus.InProgress;
        s.Status = JobStatus.Canceled;
        s.ReasonCode = reasonCode ?? s.ReasonCode;
        s.Comment = comment ?? s.Comment;
        s.ForceCanceled |= force;
        s.LastUpdatedAt = time.GetUtcNow();
        s.Pending.Clear();
        s.CancelPending = true;
        await PersistAsync();
        if (wasInProgress)
        {
            await GrainFactory.GetGrain<IJobCatalogGrain>(0).Finished(JobId);
        }

        _events.Job("canceled", Record());
        await KeepRollingAsync();
        this.AsReference<IJobGrain>().Pump().Ignore();
    }

    /// <summary>Cancels the queued executions (and with force the ones in progress) of a canceled job.</summary>
    private async Task CancelExecutionsAsync()
    {
        var s = state.State;
        if (!s.CancelPending)
        {
            return;
        }

        string[] statuses = s.ForceCanceled ? [JobStatus.Queued, JobStatus.InProgress] : [JobStatus.Queued];
        var targets = (await Task.WhenAll(AllShards().Select(shard => shard.ThingsIn(statuses)))).SelectMany(t => t).ToList();
        var failed = false;
        foreach (var batch in targets.Chunk(options.Value.RolloutBatch))
        {
            var results = await Task.WhenAll(batch.Select(async thing =>
            {
                try
                {
                    return (thing, await GrainFactory.GetGrain<IThingJobsGrain>(thing).Cancel(JobId, s.ForceCanceled, null, null), true);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogCancelFailed(logger, ex, JobId, thing);
                    return (thing, (JobExecutionRecord?)null, false);
                }
            }));
            failed |= results.Any(r => !r.Item3);
            await MergeAsync(results.Where(r => r.Item2 is not null).Select(r => Change(r.thing, r.Item2!)));
        }

        s.CancelPending = failed;   // a thing that could not be reached is tried again on the next tick
        await PersistAsync();
    }

    /// <summary>A snapshot job whose things were all notified and whose executions all ended is COMPLETED.</summary>
    private async Task CheckCompletedAsync()
    {
        var s = state.State;
        if (s.Status != JobStatus.InProgress || s.TargetSelection != "SNAPSHOT" || s.Pending.Count > 0 || Count(JobStatus.Queued) + Count(JobStatus.InProgress) > 0)
        {
            return;
        }

        s.Status = JobStatus.Completed;
        s.CompletedAt = s.LastUpdatedAt = time.GetUtcNow();
        var completed = Record();   // the job as it completed: interleaved execution calls may run during the awaits
        await PersistAsync();
        await GrainFactory.GetGrain<IJobCatalogGrain>(0).Finished(JobId);
        _events.Job("completed", completed);
    }

    /// <summary>While there is rollout or cancellation work: a timer steps it, and a reminder brings the job back after a restart.</summary>
    private async Task KeepRollingAsync()
    {
        var s = state.State;
        var busy = s.Exists && ((s.Status == JobStatus.InProgress && s.Pending.Count > 0) || s.CancelPending);
        if (!busy)
        {
            await StopRollingAsync();
            return;
        }

        _timer ??= this.RegisterGrainTimer(static (grain, _) => grain.Pump(), this, new GrainTimerCreationOptions(options.Value.RolloutTick, options.Value.RolloutTick) { KeepAlive = true });
        if (!s.HasReminder)
        {
            await this.RegisterOrUpdateReminder(RolloutReminder, TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
            s.HasReminder = true;
            await PersistAsync();
        }
    }

    private async Task StopRollingAsync()
    {
        _timer?.Dispose();
        _timer = null;
        if (state.State.HasReminder)
        {
            if (await this.GetReminder(RolloutReminder) is { } reminder)
            {
                await this.UnregisterReminder(reminder);
            }

            state.State.HasReminder = false;
            if (state.State.Exists)
            {
                await PersistAsync();
            }
        }
    }

    /// <summary>
    /// Writes the job's state. Only the job's own turns write it (calls, the rollout timer, Pump); the interleaving
    /// reports of things (<see cref="ExecutionChanged"/>) write their slices, never this state.
    /// </summary>
    private Task PersistAsync() => state.WriteStateAsync();

    private void RequireJob()
    {
        if (!state.State.Exists)
        {
            throw ApiException.NotFound($"Job {JobId} cannot be found.");
        }
    }

    private JobRecord Record()
    {
        var s = state.State;
        var details = new JobProcessDetails(
            Count(JobStatus.Queued), Count(JobStatus.InProgress), Count(JobStatus.Succeeded), Count(JobStatus.Failed), Count(JobStatus.TimedOut),
            Count(JobStatus.Rejected), Count(JobStatus.Removed), Count(JobStatus.Canceled), s.Pending.Count,
            s.Status == JobStatus.InProgress && s.Pending.Count > 0 ? CurrentRate() ?? -1 : 0);
        return new JobRecord(
            JobId, s.Status, s.TargetSelection, s.Targets, s.Description, s.Document, s.CreatedAt, s.LastUpdatedAt, s.CompletedAt, s.ReasonCode,
            s.Comment, s.ForceCanceled, details, s.Rollout, s.Abort, s.InProgressTimeoutMinutes, s.Retry, s.UrlLifetimeSeconds, s.JobTemplateId, null);
    }

    [LoggerMessage(EventId = 2041, Level = LogLevel.Warning, Message = "Job {JobId} could not queue its execution on thing {ThingName}; the rollout tries again")]
    private static partial void LogQueueFailed(ILogger logger, Exception exception, string jobId, string thingName);

    [LoggerMessage(EventId = 2042, Level = LogLevel.Warning, Message = "Job {JobId} could not cancel its execution on thing {ThingName}; it tries again")]
    private static partial void LogCancelFailed(ILogger logger, Exception exception, string jobId, string thingName);

    [LoggerMessage(EventId = 2043, Level = LogLevel.Warning, Message = "Job {JobId} is canceled by its abort criteria: {Failures} of {Ended} executed things ended {FailureType}")]
    private static partial void LogAborted(ILogger logger, string jobId, int failures, int ended, string failureType);
}

[GenerateSerializer, Alias("OrleansIot.JobState")]
public sealed class JobState
{
    [Id(0)] public bool Exists { get; set; }
    [Id(1)] public string Status { get; set; } = JobStatus.InProgress;
    [Id(2)] public string TargetSelection { get; set; } = "SNAPSHOT";
    [Id(3)] public List<string> Targets { get; set; } = [];
    [Id(4)] public string? Description { get; set; }
    [Id(5)] public string Document { get; set; } = "{}";
    [Id(6)] public DateTimeOffset CreatedAt { get; set; }
    [Id(7)] public DateTimeOffset LastUpdatedAt { get; set; }
    [Id(8)] public DateTimeOffset? CompletedAt { get; set; }
    [Id(9)] public string? ReasonCode { get; set; }
    [Id(10)] public string? Comment { get; set; }
    [Id(11)] public bool ForceCanceled { get; set; }
    [Id(12)] public JobRollout? Rollout { get; set; }
    [Id(13)] public List<JobAbortCriteria> Abort { get; set; } = [];
    [Id(14)] public long? InProgressTimeoutMinutes { get; set; }
    [Id(15)] public List<JobRetryCriteria> Retry { get; set; } = [];
    [Id(16)] public int? UrlLifetimeSeconds { get; set; }
    [Id(17)] public string? JobTemplateId { get; set; }

    /// <summary>Things still to get an execution, in rollout order.</summary>
    [Id(18)] public List<string> Pending { get; set; } = [];


    [Id(20)] public double Tokens { get; set; }
    [Id(21)] public DateTimeOffset? RefilledAt { get; set; }
    [Id(22)] public int Notified { get; set; }
    [Id(23)] public bool CancelPending { get; set; }
    [Id(24)] public bool HasReminder { get; set; }
}

[GenerateSerializer, Alias("OrleansIot.JobThingEntry")]
public sealed class JobThingEntry
{
    [Id(0)] public string Status { get; set; } = JobStatus.Queued;
    [Id(1)] public long ExecutionNumber { get; set; }
    [Id(2)] public long VersionNumber { get; set; }
    [Id(3)] public DateTimeOffset QueuedAt { get; set; }
    [Id(4)] public DateTimeOffset LastUpdatedAt { get; set; }
}
