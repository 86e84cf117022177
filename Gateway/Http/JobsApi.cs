using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.ApiKeys;
using OrleansIot.Grains.Abstractions.Jobs;
using OrleansIot.Grains.Abstractions.Registry;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Control plane: jobs with AWS's paths and shapes (<c>CreateJob</c> <c>PUT /api/jobs/{jobId}</c>, <c>DescribeJob</c>,
/// <c>ListJobs</c>, <c>UpdateJob</c>, <c>CancelJob</c>, <c>DeleteJob</c>, <c>GetJobDocument</c>,
/// <c>ListJobExecutionsForJob</c>, <c>ListJobExecutionsForThing</c>, <c>DescribeJobExecution</c>,
/// <c>CancelJobExecution</c>, <c>DeleteJobExecution</c>). Timestamps are epoch seconds, as AWS's JSON.
/// </summary>
public static class JobsApi
{
    public static IEndpointRouteBuilder MapJobsApi(this IEndpointRouteBuilder endpoints)
    {
        var jobs = endpoints.MapGroup("/jobs").WithTags("Jobs").ChangedBy(ApiKeyRoles.Operator);
        jobs.MapPut("/{jobId}", CreateAsync).WithName("CreateJob");
        jobs.MapGet("/{jobId}", DescribeAsync).WithName("DescribeJob");
        jobs.MapGet("", ListAsync).WithName("ListJobs");
        jobs.MapMethods("/{jobId}", ["PATCH"], UpdateAsync).WithName("UpdateJob");
        jobs.MapPut("/{jobId}/cancel", CancelAsync).WithName("CancelJob").WithMetadata(new OptionalBody(typeof(CancelJobBody)));
        jobs.MapDelete("/{jobId}", DeleteAsync).WithName("DeleteJob");
        jobs.MapGet("/{jobId}/job-document", DocumentAsync).WithName("GetJobDocument");
        jobs.MapGet("/{jobId}/things", ListForJobAsync).WithName("ListJobExecutionsForJob");

        var templates = endpoints.MapGroup("/job-templates").WithTags("Jobs").ChangedBy(ApiKeyRoles.Operator);
        templates.MapPut("/{jobTemplateId}", CreateTemplateAsync).WithName("CreateJobTemplate");
        templates.MapGet("/{jobTemplateId}", DescribeTemplateAsync).WithName("DescribeJobTemplate");
        templates.MapGet("", ListTemplatesAsync).WithName("ListJobTemplates");
        templates.MapDelete("/{jobTemplateId}", DeleteTemplateAsync).WithName("DeleteJobTemplate");

        var things = endpoints.MapGroup("/things/{thingName}/jobs").WithTags("Jobs").ChangedBy(ApiKeyRoles.Operator);
        things.MapGet("", ListForThingAsync).WithName("ListJobExecutionsForThing");
        things.MapGet("/{jobId}", DescribeExecutionAsync).WithName("DescribeJobExecution");
        things.MapPut("/{jobId}/cancel", CancelExecutionAsync).WithName("CancelJobExecution").WithMetadata(new OptionalBody(typeof(CancelJobExecutionBody)));
        things.MapDelete("/{jobId}/executionNumber/{executionNumber}", DeleteExecutionAsync).WithName("DeleteJobExecution");
        return endpoints;
    }

    public sealed record PresignedUrlConfig(string? RoleArn, int? ExpiresInSec);

    public sealed record RateIncreaseCriteria(int? NumberOfNotifiedThings, int? NumberOfSucceededThings);

    public sealed record ExponentialRateBody(int BaseRatePerMinute, double IncrementFactor, RateIncreaseCriteria? RateIncreaseCriteria);

    public sealed record RolloutConfig(int? MaximumPerMinute, ExponentialRateBody? ExponentialRate);

    public sealed record AbortCriteriaBody(string FailureType, string Action, double ThresholdPercentage, int MinNumberOfExecutedThings);

    public sealed record AbortConfig(IReadOnlyList<AbortCriteriaBody> CriteriaList);

    public sealed record TimeoutConfig(long? InProgressTimeoutInMinutes);

    public sealed record RetryCriteriaBody(string FailureType, int NumberOfRetries);

    public sealed record RetryConfig(IReadOnlyList<RetryCriteriaBody> CriteriaList);

    public sealed record CreateJobBody(
        IReadOnlyList<string>? Targets, string? Document, string? DocumentSource, string? Description, string? TargetSelection,
        PresignedUrlConfig? PresignedUrlConfig, RolloutConfig? JobExecutionsRolloutConfig, AbortConfig? AbortConfig, TimeoutConfig? TimeoutConfig,
        RetryConfig? JobExecutionsRetryConfig, string? JobTemplateArn, IReadOnlyDictionary<string, string>? DocumentParameters);

    public sealed record UpdateJobBody(string? Description, PresignedUrlConfig? PresignedUrlConfig, RolloutConfig? JobExecutionsRolloutConfig, AbortConfig? AbortConfig, TimeoutConfig? TimeoutConfig);

    public sealed record CancelJobBody(string? ReasonCode, string? Comment, bool? Force);

    public sealed record CancelJobExecutionBody(long? ExpectedVersion, IReadOnlyDictionary<string, string>? StatusDetails);

    public sealed record ListJobsRequest(string? Status, string? TargetSelection, string? ThingGroupName, string? NextToken, int? MaxResults);

    public sealed record ListExecutionsRequest(string? Status, string? NextToken, int? MaxResults);

    public sealed record CreateJobResponse(string JobArn, string JobId, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Description);

    public sealed record ProcessDetails(
        IReadOnlyList<string> ProcessingTargets, int NumberOfCanceledThings, int NumberOfSucceededThings, int NumberOfFailedThings, int NumberOfRejectedThings,
        int NumberOfQueuedThings, int NumberOfInProgressThings, int NumberOfRemovedThings, int NumberOfTimedOutThings);

    /// <summary>Beyond AWS: the rollout's progress for a progress bar (things not yet notified, the current rate; -1: no limit).</summary>
    public sealed record RolloutProgress(int PendingThings, double CurrentRatePerMinute);

    public sealed record JobBody(
        string JobArn, string JobId, string TargetSelection, string Status, bool ForceCanceled, string? ReasonCode, string? Comment, IReadOnlyList<string> Targets,
        string? Description, PresignedUrlConfig? PresignedUrlConfig, RolloutConfig? JobExecutionsRolloutConfig, AbortConfig? AbortConfig,
        long CreatedAt, long LastUpdatedAt, long? CompletedAt, ProcessDetails JobProcessDetails, TimeoutConfig? TimeoutConfig,
        RetryConfig? JobExecutionsRetryConfig, string? JobTemplateArn, RolloutProgress RolloutProgress);

    public sealed record DescribeJobResponse(JobBody Job);

    public sealed record JobSummary(string JobArn, string JobId, string TargetSelection, string Status, long CreatedAt, long LastUpdatedAt, long? CompletedAt);

    public sealed record ListJobsResponse(IReadOnlyList<JobSummary> Jobs, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? NextToken);

    public sealed record GetJobDocumentResponse(string Document);

    public sealed record ExecutionSummary(string Status, long QueuedAt, long? StartedAt, long LastUpdatedAt, long ExecutionNumber);

    public sealed record ExecutionForJob(string ThingArn, ExecutionSummary JobExecutionSummary);

    public sealed record ExecutionForThing(string JobId, ExecutionSummary JobExecutionSummary);

    public sealed record ListExecutionsForJobResponse(IReadOnlyList<ExecutionForJob> ExecutionSummaries, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? NextToken);

    public sealed record ListExecutionsForThingResponse(IReadOnlyList<ExecutionForThing> ExecutionSummaries, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? NextToken);

    public sealed record StatusDetailsBody(IReadOnlyDictionary<string, string> DetailsMap);

    public sealed record ExecutionBody(
        string JobId, string Status, bool ForceCanceled, StatusDetailsBody StatusDetails, string ThingArn, long QueuedAt, long? StartedAt, long LastUpdatedAt,
        long ExecutionNumber, long VersionNumber, long? ApproximateSecondsBeforeTimedOut);

    public sealed record DescribeJobExecutionResponse(ExecutionBody Execution);

    private static async Task<Ok<CreateJobResponse>> CreateAsync(string jobId, CreateJobBody body, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var spec = new JobSpec(
            body.Targets ?? [], body.Document, body.DocumentSource, body.Description, body.TargetSelection, Rollout(body.JobExecutionsRolloutConfig),
            Abort(body.AbortConfig), body.TimeoutConfig?.InProgressTimeoutInMinutes,
            [.. body.JobExecutionsRetryConfig?.CriteriaList.Select(c => new JobRetryCriteria(c.FailureType, c.NumberOfRetries)) ?? []],
            body.PresignedUrlConfig?.ExpiresInSec, TemplateId(body.JobTemplateArn), body.DocumentParameters);
        var job = await grains.GetGrain<IJobGrain>(jobId).Create(spec);
        return TypedResults.Ok(new CreateJobResponse(options.Value.Arn($"job/{job.JobId}"), job.JobId, job.Description));
    }

    public sealed record CreateJobTemplateBody(
        string? Document, string? DocumentSource, string? JobArn, string? Description, PresignedUrlConfig? PresignedUrlConfig, RolloutConfig? JobExecutionsRolloutConfig,
        AbortConfig? AbortConfig, TimeoutConfig? TimeoutConfig, RetryConfig? JobExecutionsRetryConfig);

    public sealed record CreateJobTemplateResponse(string JobTemplateArn, string JobTemplateId);

    public sealed record DescribeJobTemplateResponse(
        string JobTemplateArn, string JobTemplateId, string? Description, string Document, long CreatedAt, PresignedUrlConfig? PresignedUrlConfig,
        RolloutConfig? JobExecutionsRolloutConfig, AbortConfig? AbortConfig, TimeoutConfig? TimeoutConfig, RetryConfig? JobExecutionsRetryConfig);

    public sealed record JobTemplateSummary(string JobTemplateArn, string JobTemplateId, string? Description, long CreatedAt);

    public sealed record ListJobTemplatesResponse(IReadOnlyList<JobTemplateSummary> JobTemplates, [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? NextToken);

    public sealed record ListJobTemplatesRequest(string? NextToken, int? MaxResults);

    /// <summary>A template's id from its ARN (<c>arn:aws:iot:…:jobtemplate/{id}</c>) or the bare id.</summary>
    private static string? TemplateId(string? arn) =>
        arn is null ? null
        : arn.LastIndexOf(":jobtemplate/", StringComparison.Ordinal) is var at and >= 0 ? arn[(at + ":jobtemplate/".Length)..]
        : arn.StartsWith("arn:", StringComparison.Ordinal) ? throw ApiException.Invalid($"jobTemplateArn '{arn}' is not a job template ARN.")
        : arn;

    private static async Task<Ok<CreateJobTemplateResponse>> CreateTemplateAsync(string jobTemplateId, CreateJobTemplateBody body, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var document = body.Document;
        if (body.DocumentSource is not null)
        {
            throw ApiException.Invalid("documentSource (a document in S3) is not supported: give the document itself.");
        }

        if (body.JobArn is { } jobArn)
        {
            // AWS: a template made from an existing job copies its document and settings.
            var jobId = jobArn[(jobArn.LastIndexOf('/') + 1)..];
            var job = await DescribeOrThrowAsync(jobId, grains);
            document ??= job.Document;
            body = body with
            {
                JobExecutionsRolloutConfig = body.JobExecutionsRolloutConfig ?? Body(job, options.Value).JobExecutionsRolloutConfig,
                AbortConfig = body.AbortConfig ?? Body(job, options.Value).AbortConfig,
                TimeoutConfig = body.TimeoutConfig ?? Body(job, options.Value).TimeoutConfig,
                JobExecutionsRetryConfig = body.JobExecutionsRetryConfig ?? Body(job, options.Value).JobExecutionsRetryConfig,
            };
        }

        var template = await grains.GetGrain<IJobTemplateGrain>(jobTemplateId).Create(new JobTemplateRecord(
            jobTemplateId, body.Description, document ?? throw ApiException.Invalid("document (or jobArn) is required."), default,
            Rollout(body.JobExecutionsRolloutConfig), Abort(body.AbortConfig) ?? [], body.TimeoutConfig?.InProgressTimeoutInMinutes,
            [.. body.JobExecutionsRetryConfig?.CriteriaList.Select(c => new JobRetryCriteria(c.FailureType, c.NumberOfRetries)) ?? []],
            body.PresignedUrlConfig?.ExpiresInSec));
        return TypedResults.Ok(new CreateJobTemplateResponse(options.Value.Arn($"jobtemplate/{template.JobTemplateId}"), template.JobTemplateId));
    }

    private static async Task<Ok<DescribeJobTemplateResponse>> DescribeTemplateAsync(string jobTemplateId, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var t = await grains.GetGrain<IJobTemplateGrain>(jobTemplateId).Describe() ?? throw ApiException.NotFound($"Job template {jobTemplateId} cannot be found.");
        return TypedResults.Ok(new DescribeJobTemplateResponse(
            options.Value.Arn($"jobtemplate/{t.JobTemplateId}"), t.JobTemplateId, t.Description, t.Document, t.CreatedAt.ToUnixTimeSeconds(),
            t.PresignedUrlExpiresInSec is { } seconds ? new PresignedUrlConfig(null, seconds) : null,
            Rollout(t.Rollout),
            t.Abort.Count > 0 ? new AbortConfig([.. t.Abort.Select(c => new AbortCriteriaBody(c.FailureType, c.Action, c.ThresholdPercentage, c.MinNumberOfExecutedThings))]) : null,
            t.InProgressTimeoutInMinutes is { } minutes ? new TimeoutConfig(minutes) : null,
            t.Retry.Count > 0 ? new RetryConfig([.. t.Retry.Select(c => new RetryCriteriaBody(c.FailureType, c.NumberOfRetries))]) : null));
    }

    private static async Task<Ok<ListJobTemplatesResponse>> ListTemplatesAsync([AsParameters] ListJobTemplatesRequest request, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var (ids, next) = await grains.GetGrain<IJobTemplateListGrain>(0).Page(QueryValues.Optional(request.NextToken), QueryValues.Range(request.MaxResults, "maxResults", 50, 1, 250));
        var templates = new List<JobTemplateSummary>();
        foreach (var id in ids)
        {
            if (await grains.GetGrain<IJobTemplateGrain>(id).Describe() is { } t)
            {
                templates.Add(new JobTemplateSummary(options.Value.Arn($"jobtemplate/{t.JobTemplateId}"), t.JobTemplateId, t.Description, t.CreatedAt.ToUnixTimeSeconds()));
            }
        }

        return TypedResults.Ok(new ListJobTemplatesResponse(templates, next));
    }

    private static async Task<Ok<EmptyResponse>> DeleteTemplateAsync(string jobTemplateId, IGrainFactory grains)
    {
        await grains.GetGrain<IJobTemplateGrain>(jobTemplateId).Delete();
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<DescribeJobResponse>> DescribeAsync(string jobId, IGrainFactory grains, IOptions<RegistryOptions> options) =>
        TypedResults.Ok(new DescribeJobResponse(Body(await DescribeOrThrowAsync(jobId, grains), options.Value)));

    private static async Task<Ok<ListJobsResponse>> ListAsync([AsParameters] ListJobsRequest request, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var max = QueryValues.Range(request.MaxResults, "maxResults", 50, 1, 250);
        var catalog = grains.GetGrain<IJobCatalogGrain>(0);
        var jobs = new List<JobSummary>();
        var marker = QueryValues.Optional(request.NextToken);
        // Filters apply after paging by id: read pages until this one is full or the ids run out.
        while (true)
        {
            var page = await catalog.Page(QueryValues.Optional(request.ThingGroupName), marker, max);
            for (var i = 0; i < page.Items.Count; i++)
            {
                marker = page.Items[i];
                if (await grains.GetGrain<IJobGrain>(marker).Describe() is { } job
                    && (request.Status is null || job.Status == request.Status) && (request.TargetSelection is null || job.TargetSelection == request.TargetSelection))
                {
                    jobs.Add(new JobSummary(options.Value.Arn($"job/{job.JobId}"), job.JobId, job.TargetSelection, job.Status,
                        job.CreatedAt.ToUnixTimeSeconds(), job.LastUpdatedAt.ToUnixTimeSeconds(), job.CompletedAt?.ToUnixTimeSeconds()));
                    if (jobs.Count == max)
                    {
                        var more = i < page.Items.Count - 1 || page.NextToken is not null;
                        return TypedResults.Ok(new ListJobsResponse(jobs, more ? marker : null));
                    }
                }
            }

            if (page.NextToken is null)
            {
                return TypedResults.Ok(new ListJobsResponse(jobs, null));
            }
        }
    }

    private static async Task<Ok<EmptyResponse>> UpdateAsync(string jobId, UpdateJobBody body, IGrainFactory grains)
    {
        await grains.GetGrain<IJobGrain>(jobId).Update(new JobChange(
            body.Description, Rollout(body.JobExecutionsRolloutConfig), Abort(body.AbortConfig), body.TimeoutConfig?.InProgressTimeoutInMinutes, body.PresignedUrlConfig?.ExpiresInSec));
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<CreateJobResponse>> CancelAsync(string jobId, bool? force, HttpRequest http, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var body = await OptionalBody.ReadAsync<CancelJobBody>(http);
        var job = await grains.GetGrain<IJobGrain>(jobId).Cancel(body?.ReasonCode, body?.Comment, force ?? body?.Force ?? false);
        return TypedResults.Ok(new CreateJobResponse(options.Value.Arn($"job/{job.JobId}"), job.JobId, job.Description));
    }

    private static async Task<Ok<EmptyResponse>> DeleteAsync(string jobId, bool? force, IGrainFactory grains)
    {
        await grains.GetGrain<IJobGrain>(jobId).Delete(force ?? false);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<GetJobDocumentResponse>> DocumentAsync(string jobId, IGrainFactory grains) =>
        TypedResults.Ok(new GetJobDocumentResponse((await DescribeOrThrowAsync(jobId, grains)).Document));

    private static async Task<Ok<ListExecutionsForJobResponse>> ListForJobAsync(string jobId, [AsParameters] ListExecutionsRequest request, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var status = ExecutionStatus(request.Status);
        var page = await grains.GetGrain<IJobGrain>(jobId).ListExecutions(status, QueryValues.Optional(request.NextToken), QueryValues.Range(request.MaxResults, "maxResults", 50, 1, 250));
        return TypedResults.Ok(new ListExecutionsForJobResponse(
            [.. page.Items.Select(t => new ExecutionForJob(options.Value.Arn($"thing/{t.ThingName}"),
                new ExecutionSummary(t.Status, t.QueuedAt.ToUnixTimeSeconds(), null, t.LastUpdatedAt.ToUnixTimeSeconds(), t.ExecutionNumber)))],
            page.NextToken));
    }

    private static async Task<Ok<ListExecutionsForThingResponse>> ListForThingAsync(string thingName, [AsParameters] ListExecutionsRequest request, IGrainFactory grains)
    {
        var status = ExecutionStatus(request.Status);
        var max = QueryValues.Range(request.MaxResults, "maxResults", 50, 1, 250);
        var all = await grains.GetGrain<IThingJobsGrain>(thingName).List(status);
        var start = request.NextToken is { Length: > 0 } token && int.TryParse(token, out var skip) && skip > 0 ? skip : 0;
        var page = all.Skip(start).Take(max).ToList();
        return TypedResults.Ok(new ListExecutionsForThingResponse(
            [.. page.Select(e => new ExecutionForThing(e.JobId, Summary(e)))],
            start + page.Count < all.Count ? (start + page.Count).ToString(System.Globalization.CultureInfo.InvariantCulture) : null));
    }

    private static async Task<Ok<DescribeJobExecutionResponse>> DescribeExecutionAsync(string thingName, string jobId, long? executionNumber, IGrainFactory grains, IOptions<RegistryOptions> options, TimeProvider time)
    {
        var e = await grains.GetGrain<IThingJobsGrain>(thingName).Describe(jobId, executionNumber)
            ?? throw ApiException.NotFound($"Job execution of {jobId} on {thingName} cannot be found.");
        return TypedResults.Ok(new DescribeJobExecutionResponse(new ExecutionBody(
            e.JobId, e.Status, e.ForceCanceled, new StatusDetailsBody(e.StatusDetails), options.Value.Arn($"thing/{thingName}"), e.QueuedAt.ToUnixTimeSeconds(),
            e.StartedAt?.ToUnixTimeSeconds(), e.LastUpdatedAt.ToUnixTimeSeconds(), e.ExecutionNumber, e.VersionNumber,
            e.TimesOutAt is { } at && !JobStatus.IsTerminal(e.Status) ? Math.Max(0, (long)(at - time.GetUtcNow()).TotalSeconds) : null)));
    }

    private static async Task<Ok<EmptyResponse>> CancelExecutionAsync(string thingName, string jobId, bool? force, HttpRequest http, IGrainFactory grains)
    {
        var body = await OptionalBody.ReadAsync<CancelJobExecutionBody>(http);
        var canceled = await grains.GetGrain<IThingJobsGrain>(thingName).Cancel(jobId, force ?? false, body?.ExpectedVersion, body?.StatusDetails)
            ?? throw ApiException.NotFound($"Job execution of {jobId} on {thingName} cannot be found.");
        if (canceled.Status != JobStatus.Canceled)
        {
            throw new ApiException(409, "InvalidStateTransitionException", $"Job execution of {jobId} on {thingName} is already {canceled.Status}.");
        }

        // The job counts it (a cancel by the service is not reported back by the thing).
        await grains.GetGrain<IJobGrain>(jobId).ExecutionChanged(new JobExecutionChange(thingName, canceled.ExecutionNumber, canceled.VersionNumber, canceled.Status, canceled.LastUpdatedAt));
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DeleteExecutionAsync(string thingName, string jobId, long executionNumber, bool? force, IGrainFactory grains)
    {
        await grains.GetGrain<IThingJobsGrain>(thingName).Delete(jobId, executionNumber, force ?? false);
        await grains.GetGrain<IJobGrain>(jobId).ExecutionDeleted(thingName, executionNumber);
        return EmptyResponse.Ok;
    }

    private static async Task<JobRecord> DescribeOrThrowAsync(string jobId, IGrainFactory grains) =>
        await grains.GetGrain<IJobGrain>(jobId).Describe() ?? throw ApiException.NotFound($"Job {jobId} cannot be found.");

    private static string? ExecutionStatus(string? status) =>
        QueryValues.Optional(status) is not { } s ? null
        : JobStatus.ExecutionStatuses.Contains(s) ? s
        : throw ApiException.Invalid($"status must be one of {string.Join(", ", JobStatus.ExecutionStatuses)}.");

    private static ExecutionSummary Summary(JobExecutionRecord e) =>
        new(e.Status, e.QueuedAt.ToUnixTimeSeconds(), e.StartedAt?.ToUnixTimeSeconds(), e.LastUpdatedAt.ToUnixTimeSeconds(), e.ExecutionNumber);

    private static JobRollout? Rollout(RolloutConfig? config) => config is null ? null : new JobRollout(
        config.MaximumPerMinute,
        config.ExponentialRate is { } e
            ? new ExponentialRollout(e.BaseRatePerMinute, e.IncrementFactor, e.RateIncreaseCriteria?.NumberOfNotifiedThings, e.RateIncreaseCriteria?.NumberOfSucceededThings)
            : null);

    private static RolloutConfig? Rollout(JobRollout? rollout) => rollout is null ? null : new RolloutConfig(rollout.MaximumPerMinute, rollout.ExponentialRate is { } e
        ? new ExponentialRateBody(e.BaseRatePerMinute, e.IncrementFactor, new RateIncreaseCriteria(e.NumberOfNotifiedThings, e.NumberOfSucceededThings))
        : null);

    private static List<JobAbortCriteria>? Abort(AbortConfig? config) =>
        config is null ? null : [.. config.CriteriaList.Select(c => new JobAbortCriteria(c.FailureType, c.Action, c.ThresholdPercentage, c.MinNumberOfExecutedThings))];

    private static JobBody Body(JobRecord job, RegistryOptions options)
    {
        var d = job.ProcessDetails;
        return new JobBody(
            options.Arn($"job/{job.JobId}"), job.JobId, job.TargetSelection, job.Status, job.ForceCanceled, job.ReasonCode, job.Comment, job.Targets, job.Description,
            job.PresignedUrlExpiresInSec is { } seconds ? new PresignedUrlConfig(null, seconds) : null,
            Rollout(job.Rollout),
            job.Abort.Count > 0 ? new AbortConfig([.. job.Abort.Select(c => new AbortCriteriaBody(c.FailureType, c.Action, c.ThresholdPercentage, c.MinNumberOfExecutedThings))]) : null,
            job.CreatedAt.ToUnixTimeSeconds(), job.LastUpdatedAt.ToUnixTimeSeconds(), job.CompletedAt?.ToUnixTimeSeconds(),
            new ProcessDetails(
                job.Status == JobStatus.InProgress && d.NumberOfPendingRollout > 0 ? job.Targets : [],
                d.NumberOfCanceledThings, d.NumberOfSucceededThings, d.NumberOfFailedThings, d.NumberOfRejectedThings, d.NumberOfQueuedThings,
                d.NumberOfInProgressThings, d.NumberOfRemovedThings, d.NumberOfTimedOutThings),
            job.InProgressTimeoutInMinutes is { } minutes ? new TimeoutConfig(minutes) : null,
            job.Retry.Count > 0 ? new RetryConfig([.. job.Retry.Select(c => new RetryCriteriaBody(c.FailureType, c.NumberOfRetries))]) : null,
            job.JobTemplateId is { } template ? options.Arn($"jobtemplate/{template}") : null,
            new RolloutProgress(d.NumberOfPendingRollout, d.CurrentRatePerMinute));
    }
}
