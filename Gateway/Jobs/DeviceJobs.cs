using System.Text.Json;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Artifacts;
using OrleansIot.Grains.Abstractions.Jobs;

namespace OrleansIot.Gateway.Jobs;

/// <summary>
/// AWS's device Jobs API (GetPendingJobExecutions, StartNextPendingJobExecution, DescribeJobExecution,
/// UpdateJobExecution), one implementation for MQTT (<c>$aws/things/{thing}/jobs/…</c>) and HTTPS (iot-jobs-data
/// paths). A request is the JSON payload AWS defines; the answer is AWS's accepted document, or an
/// <see cref="ApiException"/> that each transport writes its own way (a rejected document, problem+json).
/// Job documents are handed out with their artifact placeholders replaced by fresh signed URLs.
/// </summary>
internal sealed class DeviceJobs(IGrainFactory grains, ArtifactUrls urls, TimeProvider time)
{
    /// <summary>The request's fields, read leniently as AWS does (unknown fields ignored); malformed JSON is InvalidJson.</summary>
    public sealed record Request(
        string? ClientToken, IReadOnlyDictionary<string, string>? StatusDetails, long? StepTimeoutInMinutes, long? ExecutionNumber, bool? IncludeJobDocument,
        string? Status, long? ExpectedVersion, bool? IncludeJobExecutionState);

    private static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    /// <summary>Reads a request payload (empty: no fields); throws <see cref="JsonException"/> when it is not AWS's JSON.</summary>
    public static Request Parse(ReadOnlySpan<byte> payload) =>
        payload.IsEmpty ? new Request(null, null, null, null, null, null, null, null) : JsonSerializer.Deserialize<Request>(payload, Json) ?? throw new JsonException("The payload is null.");

    public async Task<JsonObject> GetPendingAsync(string thingName)
    {
        var pending = await grains.GetGrain<IThingJobsGrain>(thingName).GetPending();
        return new JsonObject
        {
            ["inProgressJobs"] = new JsonArray([.. pending.InProgress.Select(e => (JsonNode)JobJson.Summary(e))]),
            ["queuedJobs"] = new JsonArray([.. pending.Queued.Select(e => (JsonNode)JobJson.Summary(e))]),
        };
    }

    public async Task<JsonObject> StartNextAsync(string thingName, Request request)
    {
        var next = await grains.GetGrain<IThingJobsGrain>(thingName).StartNext(request.StatusDetails, request.StepTimeoutInMinutes);
        var answer = new JsonObject();
        if (next is not null)
        {
            answer["execution"] = await ExecutionAsync(next, includeDocument: true);
        }

        return answer;
    }

    public async Task<JsonObject> DescribeAsync(string thingName, string jobId, Request request)
    {
        var execution = await grains.GetGrain<IThingJobsGrain>(thingName).Describe(jobId, request.ExecutionNumber);
        if (execution is null)
        {
            if (jobId == "$next")
            {
                return new JsonObject();   // nothing pending: AWS answers without an execution
            }

            throw ApiException.NotFound($"Job execution of {jobId} on {thingName} cannot be found.");
        }

        if (jobId != "$next" && JobStatus.IsTerminal(execution.Status))
        {
            throw new ApiException(410, "TerminalStateException", $"Job execution of {jobId} on {thingName} is {execution.Status}, a terminal state.");
        }

        return new JsonObject { ["execution"] = await ExecutionAsync(execution, request.IncludeJobDocument ?? true) };
    }

    public async Task<JsonObject> UpdateAsync(string thingName, string jobId, Request request)
    {
        var execution = await grains.GetGrain<IThingJobsGrain>(thingName).Update(
            jobId, new JobExecutionUpdate(request.Status, request.StatusDetails, request.ExpectedVersion, request.ExecutionNumber, request.StepTimeoutInMinutes));
        var answer = new JsonObject();
        if (request.IncludeJobExecutionState == true)
        {
            answer["executionState"] = JobJson.State(execution);
        }

        if (request.IncludeJobDocument == true)
        {
            answer["jobDocument"] = JsonNode.Parse(await urls.ExpandAsync(execution.Document, execution.UrlLifetimeSeconds));
        }

        return answer;
    }

    /// <summary>The execution's state for a rejection that carries it (AWS: InvalidStateTransition and VersionMismatch).</summary>
    public async Task<JsonObject?> StateAsync(string thingName, string jobId)
    {
        var execution = await grains.GetGrain<IThingJobsGrain>(thingName).Describe(jobId, null);
        return execution is null ? null : JobJson.State(execution);
    }

    private async Task<JsonObject> ExecutionAsync(JobExecutionRecord execution, bool includeDocument) =>
        JobJson.Execution(execution, includeDocument ? await urls.ExpandAsync(execution.Document, execution.UrlLifetimeSeconds) : null, time.GetUtcNow());

    /// <summary>AWS's MQTT error code for an exception name of the HTTP API.</summary>
    public static string MqttCode(string code) => code switch
    {
        "InvalidRequestException" => "InvalidRequest",
        "ResourceNotFoundException" => "ResourceNotFound",
        "InvalidStateTransitionException" => "InvalidStateTransition",
        "VersionConflictException" => "VersionMismatch",
        "TerminalStateException" => "TerminalStateReached",
        "ThrottlingException" => "RequestThrottled",
        _ => "InternalError",
    };
}
