namespace OrleansIot.Grains.Abstractions.Jobs;

/// <summary>AWS's job and job execution statuses, as AWS spells them.</summary>
public static class JobStatus
{
    /// <summary>A job whose executions are still being rolled out or run.</summary>
    public const string InProgress = "IN_PROGRESS";

    /// <summary>A snapshot job whose executions all reached a terminal state.</summary>
    public const string Completed = "COMPLETED";

    /// <summary>A job canceled by <c>CancelJob</c> or by its abort criteria.</summary>
    public const string Canceled = "CANCELED";

    /// <summary>An execution waiting for its device.</summary>
    public const string Queued = "QUEUED";

    /// <summary>A device's execution that succeeded (terminal).</summary>
    public const string Succeeded = "SUCCEEDED";

    /// <summary>A device's execution that failed (terminal, retryable).</summary>
    public const string Failed = "FAILED";

    /// <summary>An execution past its in-progress or step timeout (terminal, retryable).</summary>
    public const string TimedOut = "TIMED_OUT";

    /// <summary>An execution the device refused (terminal).</summary>
    public const string Rejected = "REJECTED";

    /// <summary>An execution whose thing left the continuous job's target group (terminal).</summary>
    public const string Removed = "REMOVED";

    /// <summary>The statuses an execution may have, in AWS's order.</summary>
    public static readonly IReadOnlyList<string> ExecutionStatuses = [Queued, InProgress, Succeeded, Failed, TimedOut, Rejected, Removed, Canceled];

    /// <summary>Whether an execution in <paramref name="status"/> is over.</summary>
    public static bool IsTerminal(string status) => status is not (Queued or InProgress);

    /// <summary>The statuses a device may set (AWS: UpdateJobExecution's <c>status</c>).</summary>
    public static bool DeviceMaySet(string status) => status is InProgress or Succeeded or Failed or Rejected;
}

/// <summary>AWS <c>jobExecutionsRolloutConfig</c>: how fast executions are created.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobRollout")]
public sealed record JobRollout(
    [property: Id(0)] int? MaximumPerMinute,
    [property: Id(1)] ExponentialRollout? ExponentialRate);

/// <summary>AWS <c>exponentialRate</c>: the rate starts at the base and is multiplied each time the criteria count passes another threshold.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ExponentialRollout")]
public sealed record ExponentialRollout(
    [property: Id(0)] int BaseRatePerMinute,
    [property: Id(1)] double IncrementFactor,
    [property: Id(2)] int? NumberOfNotifiedThings,
    [property: Id(3)] int? NumberOfSucceededThings);

/// <summary>One of AWS <c>abortConfig.criteriaList</c>: cancel the job when this share of executed things failed this way.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobAbortCriteria")]
public sealed record JobAbortCriteria(
    [property: Id(0)] string FailureType,
    [property: Id(1)] string Action,
    [property: Id(2)] double ThresholdPercentage,
    [property: Id(3)] int MinNumberOfExecutedThings);

/// <summary>One of AWS <c>jobExecutionsRetryConfig.criteriaList</c>.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobRetryCriteria")]
public sealed record JobRetryCriteria(
    [property: Id(0)] string FailureType,
    [property: Id(1)] int NumberOfRetries);

/// <summary>What <c>CreateJob</c> asks for (AWS's request body, checked by the job grain).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobSpec")]
public sealed record JobSpec(
    [property: Id(0)] IReadOnlyList<string> Targets,
    [property: Id(1)] string? Document,
    [property: Id(2)] string? DocumentSource,
    [property: Id(3)] string? Description,
    [property: Id(4)] string? TargetSelection,
    [property: Id(5)] JobRollout? Rollout,
    [property: Id(6)] IReadOnlyList<JobAbortCriteria>? Abort,
    [property: Id(7)] long? InProgressTimeoutInMinutes,
    [property: Id(8)] IReadOnlyList<JobRetryCriteria>? Retry,
    [property: Id(9)] int? PresignedUrlExpiresInSec,
    [property: Id(10)] string? JobTemplateId,
    [property: Id(11)] IReadOnlyDictionary<string, string>? DocumentParameters);

/// <summary>AWS <c>UpdateJob</c>: only what is given changes.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobChange")]
public sealed record JobChange(
    [property: Id(0)] string? Description,
    [property: Id(1)] JobRollout? Rollout,
    [property: Id(2)] IReadOnlyList<JobAbortCriteria>? Abort,
    [property: Id(3)] long? InProgressTimeoutInMinutes,
    [property: Id(4)] int? PresignedUrlExpiresInSec);

/// <summary>AWS <c>jobProcessDetails</c>: how many executions are in each state, and how many things are still to be notified.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobProcessDetails")]
public sealed record JobProcessDetails(
    [property: Id(0)] int NumberOfQueuedThings,
    [property: Id(1)] int NumberOfInProgressThings,
    [property: Id(2)] int NumberOfSucceededThings,
    [property: Id(3)] int NumberOfFailedThings,
    [property: Id(4)] int NumberOfTimedOutThings,
    [property: Id(5)] int NumberOfRejectedThings,
    [property: Id(6)] int NumberOfRemovedThings,
    [property: Id(7)] int NumberOfCanceledThings,
    [property: Id(8)] int NumberOfPendingRollout,
    [property: Id(9)] double CurrentRatePerMinute);

/// <summary>A job as <c>DescribeJob</c> shows it.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobRecord")]
public sealed record JobRecord(
    [property: Id(0)] string JobId,
    [property: Id(1)] string Status,
    [property: Id(2)] string TargetSelection,
    [property: Id(3)] IReadOnlyList<string> Targets,
    [property: Id(4)] string? Description,
    [property: Id(5)] string Document,
    [property: Id(6)] DateTimeOffset CreatedAt,
    [property: Id(7)] DateTimeOffset LastUpdatedAt,
    [property: Id(8)] DateTimeOffset? CompletedAt,
    [property: Id(9)] string? ReasonCode,
    [property: Id(10)] string? Comment,
    [property: Id(11)] bool ForceCanceled,
    [property: Id(12)] JobProcessDetails ProcessDetails,
    [property: Id(13)] JobRollout? Rollout,
    [property: Id(14)] IReadOnlyList<JobAbortCriteria> Abort,
    [property: Id(15)] long? InProgressTimeoutInMinutes,
    [property: Id(16)] IReadOnlyList<JobRetryCriteria> Retry,
    [property: Id(17)] int? PresignedUrlExpiresInSec,
    [property: Id(18)] string? JobTemplateId,
    [property: Id(19)] string? DocumentSource);

/// <summary>What the job hands a thing when it queues an execution there: the job's document and its timers and retries.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobExecutionOrder")]
public sealed record JobExecutionOrder(
    [property: Id(0)] string JobId,
    [property: Id(1)] string Document,
    [property: Id(2)] long? InProgressTimeoutInMinutes,
    [property: Id(3)] IReadOnlyList<JobRetryCriteria> Retry,
    [property: Id(4)] int? PresignedUrlExpiresInSec);

/// <summary>One execution of a job on a thing (AWS <c>JobExecution</c>); the document is the job's, placeholders unexpanded.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobExecutionRecord")]
public sealed record JobExecutionRecord(
    [property: Id(0)] string JobId,
    [property: Id(1)] string ThingName,
    [property: Id(2)] string Status,
    [property: Id(3)] IReadOnlyDictionary<string, string> StatusDetails,
    [property: Id(4)] DateTimeOffset QueuedAt,
    [property: Id(5)] DateTimeOffset? StartedAt,
    [property: Id(6)] DateTimeOffset LastUpdatedAt,
    [property: Id(7)] long VersionNumber,
    [property: Id(8)] long ExecutionNumber,
    [property: Id(9)] bool ForceCanceled,
    [property: Id(10)] DateTimeOffset? TimesOutAt,
    [property: Id(11)] string Document,
    [property: Id(12)] int? UrlLifetimeSeconds);

/// <summary>AWS <c>UpdateJobExecution</c> from a device.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobExecutionUpdate")]
public sealed record JobExecutionUpdate(
    [property: Id(0)] string? Status,
    [property: Id(1)] IReadOnlyDictionary<string, string>? StatusDetails,
    [property: Id(2)] long? ExpectedVersion,
    [property: Id(3)] long? ExecutionNumber,
    [property: Id(4)] long? StepTimeoutInMinutes);

/// <summary>A thing's pending executions (AWS <c>GetPendingJobExecutions</c>): in progress first, then queued in queue order.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.PendingJobExecutions")]
public sealed record PendingJobExecutions(
    [property: Id(0)] IReadOnlyList<JobExecutionRecord> InProgress,
    [property: Id(1)] IReadOnlyList<JobExecutionRecord> Queued);

/// <summary>What a thing tells its job when an execution changed; the job keeps the newest per thing.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobExecutionChange")]
public sealed record JobExecutionChange(
    [property: Id(0)] string ThingName,
    [property: Id(1)] long ExecutionNumber,
    [property: Id(2)] long VersionNumber,
    [property: Id(3)] string Status,
    [property: Id(4)] DateTimeOffset At);

/// <summary>One row of <c>ListJobExecutionsForJob</c>.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobThingStatus")]
public sealed record JobThingStatus(
    [property: Id(0)] string ThingName,
    [property: Id(1)] string Status,
    [property: Id(2)] long ExecutionNumber,
    [property: Id(3)] DateTimeOffset QueuedAt,
    [property: Id(4)] DateTimeOffset LastUpdatedAt);

/// <summary>A page of rows; <see cref="NextToken"/> is <c>null</c> on the last page.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobPage`1")]
public sealed record JobPage<T>(
    [property: Id(0)] IReadOnlyList<T> Items,
    [property: Id(1)] string? NextToken);

/// <summary>A job template (AWS <c>CreateJobTemplate</c>): a document and the job settings jobs made from it start with.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobTemplateRecord")]
public sealed record JobTemplateRecord(
    [property: Id(0)] string JobTemplateId,
    [property: Id(1)] string? Description,
    [property: Id(2)] string Document,
    [property: Id(3)] DateTimeOffset CreatedAt,
    [property: Id(4)] JobRollout? Rollout,
    [property: Id(5)] IReadOnlyList<JobAbortCriteria> Abort,
    [property: Id(6)] long? InProgressTimeoutInMinutes,
    [property: Id(7)] IReadOnlyList<JobRetryCriteria> Retry,
    [property: Id(8)] int? PresignedUrlExpiresInSec);
