namespace OrleansIot.Grains.Abstractions.Jobs;

/// <summary>
/// A job, keyed by its id (AWS <c>CreateJob</c> … <c>DeleteJob</c>): its definition, its targets, the rollout that
/// queues executions on things at the configured rate, the counts per execution state and the abort criteria.
/// The executions themselves live with their things (<see cref="IThingJobsGrain"/>).
/// </summary>
[Alias("OrleansIot.IJobGrain")]
public interface IJobGrain : IGrainWithStringKey
{
    /// <summary>Creates the job and starts its rollout; <c>ResourceAlreadyExistsException</c> if the id is taken.</summary>
    [Alias("Create")]
    Task<JobRecord> Create(JobSpec spec);

    /// <summary>The job, or <c>null</c>.</summary>
    [Alias("Describe"), Orleans.Concurrency.ReadOnly]
    Task<JobRecord?> Describe();

    /// <summary>AWS <c>UpdateJob</c>: description, rollout, abort, timeout and URL expiry of a job in progress.</summary>
    [Alias("Update")]
    Task<JobRecord> Update(JobChange change);

    /// <summary>
    /// AWS <c>CancelJob</c>: no new executions; queued ones are canceled, in-progress ones too with
    /// <paramref name="force"/>. A canceled job can only be force-canceled again.
    /// </summary>
    [Alias("Cancel")]
    Task<JobRecord> Cancel(string? reasonCode, string? comment, bool force);

    /// <summary>AWS <c>DeleteJob</c>: refused while in progress unless <paramref name="force"/>; deletes its executions.</summary>
    [Alias("Delete")]
    Task Delete(bool force);

    /// <summary>AWS <c>ListJobExecutionsForJob</c>.</summary>
    [Alias("ListExecutions"), Orleans.Concurrency.ReadOnly]
    Task<JobPage<JobThingStatus>> ListExecutions(string? status, string? nextToken, int maxResults);

    /// <summary>A thing's execution changed (by its device or a timeout). Interleaves, so a thing may report while the job calls it.</summary>
    [Alias("ExecutionChanged"), Orleans.Concurrency.AlwaysInterleave]
    Task ExecutionChanged(JobExecutionChange change);

    /// <summary>A thing's execution was deleted (AWS <c>DeleteJobExecution</c>): it leaves the job's counts and lists.</summary>
    [Alias("ExecutionDeleted"), Orleans.Concurrency.AlwaysInterleave]
    Task ExecutionDeleted(string thingName, long executionNumber);

    /// <summary>A thing joined one of the job's target groups (continuous jobs queue an execution for it).</summary>
    [Alias("ThingJoined")]
    Task ThingJoined(string thingName);

    /// <summary>A thing left one of the job's target groups: its queued execution of a continuous job is removed.</summary>
    [Alias("ThingLeft")]
    Task ThingLeft(string thingName);

    /// <summary>Does the rollout's and cancellation's pending work (called by the job itself, after a turn that asked for it).</summary>
    [Alias("Pump"), Orleans.Concurrency.OneWay]
    Task Pump();
}

/// <summary>
/// The job executions of one thing, keyed by the thing's name: the state machine AWS defines (only legal
/// transitions, <c>versionNumber</c>, <c>executionNumber</c>, step and in-progress timeouts on a reminder, retries),
/// the device's Jobs API (MQTT and HTTPS), and the <c>notify</c> / <c>notify-next</c> publications.
/// </summary>
[Alias("OrleansIot.IThingJobsGrain")]
public interface IThingJobsGrain : IGrainWithStringKey
{
    /// <summary>Queues an execution of the job (the rollout calls this once per thing; again is a no-op).</summary>
    [Alias("Queue")]
    Task<JobExecutionRecord> Queue(JobExecutionOrder order);

    /// <summary>AWS <c>GetPendingJobExecutions</c>.</summary>
    [Alias("GetPending")]
    Task<PendingJobExecutions> GetPending();

    /// <summary>AWS <c>StartNextPendingJobExecution</c>: the in-progress one, else the oldest queued one started; <c>null</c> when none.</summary>
    [Alias("StartNext")]
    Task<JobExecutionRecord?> StartNext(IReadOnlyDictionary<string, string>? statusDetails, long? stepTimeoutInMinutes);

    /// <summary>AWS <c>DescribeJobExecution</c>; <paramref name="jobId"/> <c>$next</c> is the next pending one (<c>null</c> when none).</summary>
    [Alias("Describe")]
    Task<JobExecutionRecord?> Describe(string jobId, long? executionNumber);

    /// <summary>AWS <c>UpdateJobExecution</c> by the device.</summary>
    [Alias("Update")]
    Task<JobExecutionRecord> Update(string jobId, JobExecutionUpdate update);

    /// <summary>AWS <c>CancelJobExecution</c> (and the job's cancel): queued, or in progress with <paramref name="force"/>; <c>null</c> if there is none or it is already over.</summary>
    [Alias("Cancel")]
    Task<JobExecutionRecord?> Cancel(string jobId, bool force, long? expectedVersion, IReadOnlyDictionary<string, string>? statusDetails);

    /// <summary>A continuous job's group no longer holds the thing: a queued execution becomes REMOVED.</summary>
    [Alias("Remove")]
    Task<JobExecutionRecord?> Remove(string jobId);

    /// <summary>AWS <c>DeleteJobExecution</c>: only a terminal one unless <paramref name="force"/>.</summary>
    [Alias("Delete")]
    Task Delete(string jobId, long? executionNumber, bool force);

    /// <summary>AWS <c>ListJobExecutionsForThing</c>: this thing's executions, newest queued first, optionally of one status.</summary>
    [Alias("List")]
    Task<IReadOnlyList<JobExecutionRecord>> List(string? status);
}

/// <summary>
/// The set of jobs (for <c>ListJobs</c>), the thing groups each targets (for the <c>thingGroupName</c> filter and for
/// continuous jobs, which follow their groups) and the artifacts each refers to (an artifact cannot be deleted while a
/// job in progress needs it).
/// </summary>
[Alias("OrleansIot.IJobCatalogGrain")]
public interface IJobCatalogGrain : IGrainWithIntegerKey
{
    /// <summary>Records a new job in progress, the groups it targets and the artifacts its document names.</summary>
    [Alias("Add")]
    Task Add(string jobId, IReadOnlyList<string> groups, IReadOnlyList<string> artifacts, bool continuous);

    /// <summary>Forgets a job.</summary>
    [Alias("Remove")]
    Task Remove(string jobId);

    /// <summary>A job is no longer in progress (completed, canceled): it stops following its groups and holding its artifacts.</summary>
    [Alias("Finished")]
    Task Finished(string jobId);

    /// <summary>Job ids in ordinal order after <paramref name="marker"/>, optionally only those targeting a group.</summary>
    [Alias("Page"), Orleans.Concurrency.ReadOnly]
    Task<JobPage<string>> Page(string? thingGroupName, string? marker, int pageSize);

    /// <summary>The continuous jobs in progress that follow any of these groups.</summary>
    [Alias("Following"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<string>> Following(IReadOnlyList<string> groups);

    /// <summary>The jobs in progress whose document names the artifact.</summary>
    [Alias("Referencing"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<string>> Referencing(string artifactId);
}

/// <summary>A job template, keyed by its id (AWS <c>CreateJobTemplate</c>, <c>DescribeJobTemplate</c>, <c>DeleteJobTemplate</c>).</summary>
[Alias("OrleansIot.IJobTemplateGrain")]
public interface IJobTemplateGrain : IGrainWithStringKey
{
    /// <summary>Creates the template (checked as a job's settings are); <c>ConflictException</c> if the id is taken.</summary>
    [Alias("Create")]
    Task<JobTemplateRecord> Create(JobTemplateRecord template);

    /// <summary>The template, or <c>null</c>.</summary>
    [Alias("Describe"), Orleans.Concurrency.ReadOnly]
    Task<JobTemplateRecord?> Describe();

    /// <summary>Deletes the template (jobs made from it keep their copy); a missing one is <c>ResourceNotFoundException</c>.</summary>
    [Alias("Delete")]
    Task Delete();
}

/// <summary>Job template ids in order (<c>ListJobTemplates</c>); stateless, any silo answers.</summary>
[Alias("OrleansIot.IJobTemplateListGrain")]
public interface IJobTemplateListGrain : IGrainWithIntegerKey
{
    /// <summary>Template ids after <paramref name="marker"/>, at most <paramref name="pageSize"/>, and the marker of the next page.</summary>
    [Alias("Page")]
    Task<(IReadOnlyList<string> Ids, string? NextMarker)> Page(string? marker, int pageSize);
}
