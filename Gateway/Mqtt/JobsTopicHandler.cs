using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Gateway.Jobs;
using OrleansIot.Gateway.Routing;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// AWS's Jobs device API over MQTT (called by <see cref="PublishInterceptor"/> after the publish was authorized):
/// <c>$aws/things/{thing}/jobs/get</c>, <c>start-next</c>, <c>{jobId}/get</c> (<c>$next</c> too) and
/// <c>{jobId}/update</c>. The answer goes on the request topic + <c>/accepted</c> or <c>/rejected</c> to the requesting
/// connection alone, subscribed or not, and does not pass through the broker (AWS); <c>clientToken</c> is echoed and
/// <c>timestamp</c> is in epoch seconds. The PUBACK follows the answer. <c>notify</c>, <c>notify-next</c> and the
/// answer topics are the platform's: a client may not publish to them.
/// </summary>
internal sealed partial class JobsTopicHandler(DeviceJobs jobs, LocalSubscribers local, TimeProvider time, ILogger<JobsTopicHandler> logger)
{
    private const string Prefix = "$aws/things/";
    private const string Infix = "/jobs/";

    /// <summary>A parsed jobs topic: the thing, the job id (null for get/start-next), the operation, and whether it is a request.</summary>
    public readonly record struct JobsTopic(string ThingName, string? JobId, string Operation, bool IsRequest);

    /// <summary>Whether the topic is in a thing's jobs namespace (<c>$aws/things/{thing}/jobs/…</c>).</summary>
    public static bool TryParse(string topic, out JobsTopic parsed)
    {
        parsed = default;
        if (!topic.StartsWith(Prefix, StringComparison.Ordinal))
        {
            return false;
        }

        var infix = topic.IndexOf(Infix, Prefix.Length, StringComparison.Ordinal);
        if (infix <= Prefix.Length || topic.IndexOf('/', Prefix.Length) != infix)
        {
            return false;
        }

        var thing = topic[Prefix.Length..infix];
        var rest = topic[(infix + Infix.Length)..].Split('/');
        parsed = rest switch
        {
            ["get"] or ["start-next"] => new JobsTopic(thing, null, rest[0], true),
            ["get" or "start-next", "accepted" or "rejected"] => new JobsTopic(thing, null, rest[0], false),
            ["notify"] or ["notify-next"] => new JobsTopic(thing, null, rest[0], false),
            [var job, "get" or "update"] => new JobsTopic(thing, job, rest[1], true),
            [var job, "get" or "update", "accepted" or "rejected"] => new JobsTopic(thing, job, rest[1], false),
            _ => new JobsTopic(thing, null, "", true),   // not an operation: answered InvalidTopic
        };
        return true;
    }

    /// <summary>Answers the request to its connection.</summary>
    public async Task HandleAsync(LiveConnection meter, string topic, JobsTopic request, byte[] payload)
    {
        string? clientToken = null;
        JsonObject answer;
        var accepted = false;
        try
        {
            var fields = DeviceJobs.Parse(payload);
            clientToken = fields.ClientToken;
            answer = request switch
            {
                { Operation: "" } => Rejected("InvalidTopic", $"{topic} is not a jobs operation."),
                { JobId: null, Operation: "get" } => await jobs.GetPendingAsync(request.ThingName),
                { JobId: null, Operation: "start-next" } => await jobs.StartNextAsync(request.ThingName, fields),
                { JobId: { } id, Operation: "get" } => await jobs.DescribeAsync(request.ThingName, id, fields),
                { JobId: { } id } => await jobs.UpdateAsync(request.ThingName, id, fields),
                _ => Rejected("InvalidTopic", $"{topic} is not a jobs operation."),
            };
            accepted = request.Operation != "";
        }
        catch (JsonException ex)
        {
            answer = Rejected("InvalidJson", $"The payload is not the JSON this request takes: {ex.Message}");
        }
        catch (ApiException ex)
        {
            answer = Rejected(DeviceJobs.MqttCode(ex.Code), ex.Message);
            if (ex.Code is "InvalidStateTransitionException" or "VersionConflictException" && request.JobId is { } jobId)
            {
                answer["executionState"] = await jobs.StateAsync(request.ThingName, jobId);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFailed(logger, ex, meter.ClientId, topic);
            answer = Rejected("InternalError", "Internal service failure");
        }

        answer["timestamp"] = time.GetUtcNow().ToUnixTimeSeconds();
        if (clientToken is not null)
        {
            answer["clientToken"] = clientToken;
        }

        var message = new MqttApplicationMessageBuilder()
            .WithTopic(topic + (accepted ? "/accepted" : "/rejected"))
            .WithPayload(Grains.Abstractions.Jobs.JobJson.Utf8(answer))
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
        if (!local.DeliverReply(meter.ClientId, message))
        {
            LogNotDelivered(logger, meter.ClientId, message.Topic);
        }
    }

    private static JsonObject Rejected(string code, string message) => new() { ["code"] = code, ["message"] = message };

    [LoggerMessage(EventId = 1070, Level = LogLevel.Warning, Message = "Jobs request of {ClientId} on {Topic} failed")]
    private static partial void LogFailed(ILogger logger, Exception exception, string clientId, string topic);

    [LoggerMessage(EventId = 1071, Level = LogLevel.Information, Message = "The jobs answer for {ClientId} on {Topic} was not delivered: the connection is gone or may not receive it")]
    private static partial void LogNotDelivered(ILogger logger, string clientId, string topic);
}
