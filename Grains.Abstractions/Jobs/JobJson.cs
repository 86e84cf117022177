using System.Text.Json.Nodes;

namespace OrleansIot.Grains.Abstractions.Jobs;

/// <summary>
/// AWS's device-side job documents (<c>JobExecution</c>, <c>JobExecutionState</c>, <c>JobExecutionSummary</c>), with
/// timestamps in epoch seconds, written the same way for MQTT, HTTPS and the notifications.
/// </summary>
public static class JobJson
{
    /// <summary>How the documents are written: URLs' <c>&amp;</c> and quotes as themselves (valid JSON either way; AWS writes them so).</summary>
    public static readonly System.Text.Json.JsonSerializerOptions Options = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>The document as UTF-8 JSON.</summary>
    public static byte[] Utf8(JsonNode document) => System.Text.Encoding.UTF8.GetBytes(document.ToJsonString(Options));

    /// <summary>AWS <c>JobExecution</c>; <paramref name="document"/> is the expanded job document (omitted when <c>null</c>).</summary>
    public static JsonObject Execution(JobExecutionRecord e, string? document, DateTimeOffset now)
    {
        var o = new JsonObject
        {
            ["jobId"] = e.JobId,
            ["thingName"] = e.ThingName,
            ["status"] = e.Status,
            ["statusDetails"] = Details(e.StatusDetails),
            ["queuedAt"] = e.QueuedAt.ToUnixTimeSeconds(),
        };
        if (e.StartedAt is { } started)
        {
            o["startedAt"] = started.ToUnixTimeSeconds();
        }

        o["lastUpdatedAt"] = e.LastUpdatedAt.ToUnixTimeSeconds();
        if (e.TimesOutAt is { } deadline && !JobStatus.IsTerminal(e.Status))
        {
            o["approximateSecondsBeforeTimedOut"] = Math.Max(0, (long)(deadline - now).TotalSeconds);
        }

        o["versionNumber"] = e.VersionNumber;
        o["executionNumber"] = e.ExecutionNumber;
        if (document is not null)
        {
            o["jobDocument"] = JsonNode.Parse(document);
        }

        return o;
    }

    /// <summary>AWS <c>JobExecutionState</c>.</summary>
    public static JsonObject State(JobExecutionRecord e) => new()
    {
        ["status"] = e.Status,
        ["statusDetails"] = Details(e.StatusDetails),
        ["versionNumber"] = e.VersionNumber,
    };

    /// <summary>AWS <c>JobExecutionSummary</c>.</summary>
    public static JsonObject Summary(JobExecutionRecord e)
    {
        var o = new JsonObject
        {
            ["jobId"] = e.JobId,
            ["queuedAt"] = e.QueuedAt.ToUnixTimeSeconds(),
        };
        if (e.StartedAt is { } started)
        {
            o["startedAt"] = started.ToUnixTimeSeconds();
        }

        o["lastUpdatedAt"] = e.LastUpdatedAt.ToUnixTimeSeconds();
        o["versionNumber"] = e.VersionNumber;
        o["executionNumber"] = e.ExecutionNumber;
        return o;
    }

    private static JsonObject Details(IReadOnlyDictionary<string, string> details)
    {
        var o = new JsonObject();
        foreach (var (key, value) in details)
        {
            o[key] = value;
        }

        return o;
    }
}
