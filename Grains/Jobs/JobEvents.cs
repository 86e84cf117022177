using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions.Jobs;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Jobs;

/// <summary>
/// AWS's jobs events (<c>$aws/events/job/{jobId}/{completed|canceled|deleted}</c>,
/// <c>$aws/events/jobExecution/{jobId}/{succeeded|failed|rejected|canceled|timed_out|removed|deleted}</c>), published
/// through the broker after the change is stored, when <see cref="RegistryOptions.PublishEvents"/> is on (AWS: the
/// JOB and JOB_EXECUTION event types); rules can select them like any platform topic.
/// </summary>
internal sealed class JobEvents(RegistryOptions options, IBrokerPublisher broker, TimeProvider time)
{
    public void Job(string operation, JobRecord job)
    {
        if (!options.PublishEvents)
        {
            return;
        }

        var d = job.ProcessDetails;
        var body = Event("JOB", operation);
        body["jobId"] = job.JobId;
        body["status"] = job.Status;
        body["targetSelection"] = job.TargetSelection;
        body["targets"] = new JsonArray([.. job.Targets.Select(t => (JsonNode?)t)]);
        body["description"] = job.Description;
        body["createdAt"] = job.CreatedAt.ToUnixTimeSeconds();
        body["lastUpdatedAt"] = job.LastUpdatedAt.ToUnixTimeSeconds();
        body["completedAt"] = job.CompletedAt?.ToUnixTimeSeconds();
        body["reasonCode"] = job.ReasonCode;
        body["comment"] = job.Comment;
        body["jobProcessDetails"] = new JsonObject
        {
            ["numberOfCanceledThings"] = d.NumberOfCanceledThings,
            ["numberOfRejectedThings"] = d.NumberOfRejectedThings,
            ["numberOfFailedThings"] = d.NumberOfFailedThings,
            ["numberOfRemovedThings"] = d.NumberOfRemovedThings,
            ["numberOfSucceededThings"] = d.NumberOfSucceededThings,
            ["numberOfTimedOutThings"] = d.NumberOfTimedOutThings,
        };
        broker.Publish($"$aws/events/job/{job.JobId}/{operation}", JobJson.Utf8(body), 1);
    }

    public void Execution(string operation, JobExecutionRecord execution)
    {
        if (!options.PublishEvents)
        {
            return;
        }

        var body = Event("JOB_EXECUTION", operation);
        body["jobId"] = execution.JobId;
        body["thingArn"] = options.Arn($"thing/{execution.ThingName}");
        body["status"] = execution.Status;
        body["executionNumber"] = execution.ExecutionNumber;
        body["versionNumber"] = execution.VersionNumber;
        var details = new JsonObject();
        foreach (var (key, value) in execution.StatusDetails)
        {
            details[key] = value;
        }

        body["statusDetails"] = details;
        broker.Publish($"$aws/events/jobExecution/{execution.JobId}/{operation}", JobJson.Utf8(body), 1);
    }

    private JsonObject Event(string type, string operation) => new()
    {
        ["eventType"] = type,
        ["eventId"] = Guid.NewGuid().ToString("N"),
        ["timestamp"] = time.GetUtcNow().ToUnixTimeSeconds(),
        ["operation"] = operation,
    };
}
