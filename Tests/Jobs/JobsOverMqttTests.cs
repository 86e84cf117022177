using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;

namespace OrleansIot.Tests.Jobs;

/// <summary>A firmware update end to end on one node: an artifact, a job, and a device speaking AWS's jobs topics over MQTT.</summary>
[Collection(NodeCollection.Name)]
public sealed class JobsOverMqttTests(NodeFixture node)
{
    internal static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    internal static string ThingArn(string thing) => $"arn:aws:iot:local:000000000000:thing/{thing}";

    internal static async Task<JsonNode> UploadAsync(HttpClient http, byte[] bytes, string name)
    {
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        return await ApiAssert.OkAsync(await http.PostAsync($"/api/artifacts?name={name}", content));
    }

    internal static async Task<JsonNode> RequestAsync(IMqttClient device, Inbox inbox, string topic, string payload, int answersBefore = 0)
    {
        var result = await device.PublishStringAsync(topic, payload, MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.True(result.IsSuccess, $"{topic}: {result.ReasonCode}");
        var answers = await Eventually.Get(
            () => Task.FromResult(inbox.Messages.Where(m => m.Topic == topic + "/accepted" || m.Topic == topic + "/rejected").ToList()),
            m => m.Count > answersBefore,
            $"an answer on {topic}");
        var answer = answers[answersBefore];
        var body = JsonNode.Parse(answer.ConvertPayloadToString())!;
        body["$topic"] = answer.Topic[(topic.Length + 1)..];
        return body;
    }

    [Fact]
    public async Task Device_TakesAFirmwareJob_DownloadsThroughTheSignedUrlInTwoRanges_AndTheJobCompletes()
    {
        var thing = Ids.NewId("ota");
        var jobId = Ids.NewId("fw");
        var jobs = $"$aws/things/{thing}/jobs";
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Json("{}")));
        var firmware = RandomNumberGenerator.GetBytes(300_000);
        var artifact = await UploadAsync(node.Http, firmware, "fw-2.0.bin");
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(firmware)), (string)artifact["sha256"]!);
        Assert.Equal(300_000, (long)artifact["size"]!);

        // The device listens only to notify-next (the AWS SDK's jobs sample); answers reach it without subscribing.
        var device = await node.ConnectAsync(thing, MqttProtocolVersion.V311);
        var inbox = Inbox.Of(device);
        await device.SubscribeAsync($"{jobs}/notify-next", MqttQualityOfServiceLevel.AtLeastOnce);

        var document = $$"""{"operation":"firmware-update","version":"2.0","url":"${iot:artifact-url:{{artifact["artifactId"]}}}","sha256":"{{artifact["sha256"]}}"}""";
        var created = await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{jobId}",
            Json(new JsonObject { ["targets"] = new JsonArray(ThingArn(thing)), ["document"] = document, ["description"] = "firmware 2.0" }.ToJsonString())));
        Assert.Equal($"arn:aws:iot:local:000000000000:job/{jobId}", (string)created["jobArn"]!);

        var next = JsonNode.Parse((await inbox.WaitAsync($"{jobs}/notify-next", 1, "notify-next"))[0])!;
        Assert.Equal(jobId, (string)next["execution"]!["jobId"]!);
        Assert.Equal("QUEUED", (string)next["execution"]!["status"]!);

        var started = await RequestAsync(device, inbox, $"{jobs}/start-next", """{"clientToken":"s1","statusDetails":{"step":"downloading"},"stepTimeoutInMinutes":30}""");
        Assert.Equal("accepted", (string)started["$topic"]!);
        Assert.Equal("s1", (string)started["clientToken"]!);
        var execution = started["execution"]!;
        Assert.Equal("IN_PROGRESS", (string)execution["status"]!);
        Assert.Equal(2, (long)execution["versionNumber"]!);
        Assert.Equal("downloading", (string)execution["statusDetails"]!["step"]!);
        var url = (string)execution["jobDocument"]!["url"]!;
        Assert.StartsWith($"http://127.0.0.1:{node.HttpPort}/artifacts/", url, StringComparison.Ordinal);

        // An interrupted download resumes with a range request; the ETag is the SHA-256.
        using var anonymous = new HttpClient();
        using var first = new HttpRequestMessage(HttpMethod.Get, url);
        first.Headers.Range = new RangeHeaderValue(0, 149_999);
        using var part1 = await anonymous.SendAsync(first);
        Assert.Equal(HttpStatusCode.PartialContent, part1.StatusCode);
        var etag = part1.Headers.ETag!;
        Assert.Equal($"\"{artifact["sha256"]}\"", etag.Tag);
        using var second = new HttpRequestMessage(HttpMethod.Get, url);
        second.Headers.Range = new RangeHeaderValue(150_000, null);
        second.Headers.IfRange = new RangeConditionHeaderValue(etag);
        using var part2 = await anonymous.SendAsync(second);
        Assert.Equal(HttpStatusCode.PartialContent, part2.StatusCode);
        Assert.Equal("bytes 150000-299999/300000", part2.Content.Headers.ContentRange!.ToString());
        byte[] downloaded = [.. await part1.Content.ReadAsByteArrayAsync(), .. await part2.Content.ReadAsByteArrayAsync()];
        Assert.Equal(firmware, downloaded);

        var progress = await RequestAsync(device, inbox, $"{jobs}/{jobId}/update", """{"status":"IN_PROGRESS","statusDetails":{"step":"flashing"},"expectedVersion":2}""");
        Assert.Equal("accepted", (string)progress["$topic"]!);
        var done = await RequestAsync(device, inbox, $"{jobs}/{jobId}/update",
            """{"status":"SUCCEEDED","statusDetails":{"version":"2.0"},"expectedVersion":3,"includeJobExecutionState":true,"clientToken":"u2"}""", answersBefore: 1);
        Assert.Equal("accepted", (string)done["$topic"]!);
        Assert.Equal("SUCCEEDED", (string)done["executionState"]!["status"]!);
        Assert.Equal(4, (long)done["executionState"]!["versionNumber"]!);
        Assert.Equal("u2", (string)done["clientToken"]!);

        // The queue is empty: notify-next says so (no execution); the job is complete; the download was counted once.
        var last = JsonNode.Parse((await inbox.WaitAsync($"{jobs}/notify-next", 2, "the empty notify-next"))[1])!;
        Assert.Null(last["execution"]);
        var job = await Eventually.Get(
            async () => (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/jobs/{jobId}")))["job"]!,
            j => (string?)j["status"] == "COMPLETED",
            "the job completed");
        Assert.Equal(1, (int)job["jobProcessDetails"]!["numberOfSucceededThings"]!);
        Assert.NotNull(job["completedAt"]);
        var described = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/artifacts/{artifact["artifactId"]}"));
        Assert.Equal(1, (long)described["downloads"]!);
        var executionHttp = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{thing}/jobs/{jobId}"));
        Assert.Equal("2.0", (string)executionHttp["execution"]!["statusDetails"]!["detailsMap"]!["version"]!);
    }

    [Fact]
    public async Task BadRequests_GetAwsRejectedDocuments_AndChangeNothing()
    {
        var thing = Ids.NewId("strict");
        var jobId = Ids.NewId("cfg");
        var jobs = $"$aws/things/{thing}/jobs";
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Json("{}")));
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{jobId}",
            Json(new JsonObject { ["targets"] = new JsonArray(ThingArn(thing)), ["document"] = """{"set":"x"}""" }.ToJsonString())));
        var device = await node.ConnectAsync(thing);
        var inbox = Inbox.Of(device);
        await Eventually.True(async () => (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{thing}/jobs")))["executionSummaries"]!.AsArray().Count == 1, "the execution queued");

        var stale = await RequestAsync(device, inbox, $"{jobs}/{jobId}/update", """{"status":"IN_PROGRESS","expectedVersion":7,"clientToken":"v"}""");
        Assert.Equal("rejected", (string)stale["$topic"]!);
        Assert.Equal("VersionMismatch", (string)stale["code"]!);
        Assert.Equal("QUEUED", (string)stale["executionState"]!["status"]!);
        Assert.Equal(1, (long)stale["executionState"]!["versionNumber"]!);
        Assert.Equal("v", (string)stale["clientToken"]!);

        var badJson = await RequestAsync(device, inbox, $"{jobs}/{jobId}/update", """{"status":""", answersBefore: 1);
        Assert.Equal("InvalidJson", (string)badJson["code"]!);

        var badStatus = await RequestAsync(device, inbox, $"{jobs}/{jobId}/update", """{"status":"CANCELED"}""", answersBefore: 2);
        Assert.Equal("InvalidRequest", (string)badStatus["code"]!);

        var tooMany = new JsonObject();
        for (var i = 0; i < 11; i++)
        {
            tooMany[$"k{i}"] = "v";
        }

        var details = await RequestAsync(device, inbox, $"{jobs}/{jobId}/update", new JsonObject { ["status"] = "IN_PROGRESS", ["statusDetails"] = tooMany }.ToJsonString(), answersBefore: 3);
        Assert.Equal("InvalidRequest", (string)details["code"]!);

        var unknown = await RequestAsync(device, inbox, $"{jobs}/no-such-job/get", "{}");
        Assert.Equal("ResourceNotFound", (string)unknown["code"]!);

        var rejectedByDevice = await RequestAsync(device, inbox, $"{jobs}/{jobId}/update", """{"status":"REJECTED","statusDetails":{"reason":"busy"}}""", answersBefore: 4);
        Assert.Equal("accepted", (string)rejectedByDevice["$topic"]!);
        var again = await RequestAsync(device, inbox, $"{jobs}/{jobId}/update", """{"status":"IN_PROGRESS"}""", answersBefore: 5);
        Assert.Equal("InvalidStateTransition", (string)again["code"]!);
        Assert.Equal("REJECTED", (string)again["executionState"]!["status"]!);
        var terminal = await RequestAsync(device, inbox, $"{jobs}/{jobId}/get", "{}");
        Assert.Equal("TerminalStateReached", (string)terminal["code"]!);

        // The platform's topics are not the device's to publish on: MQTT 5 gets 0x87.
        var notify = await device.PublishStringAsync($"{jobs}/notify", "{}", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, notify.ReasonCode);

        var execution = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{thing}/jobs/{jobId}"));
        Assert.Equal("REJECTED", (string)execution["execution"]!["status"]!);
        Assert.Equal(2, (long)execution["execution"]!["versionNumber"]!);
        Assert.Equal("busy", (string)execution["execution"]!["statusDetails"]!["detailsMap"]!["reason"]!);
    }

    [Fact]
    public async Task ContinuousJob_ReachesAThingAddedToItsGroupLater_AndRemovesItsQueuedExecutionWhenItLeaves()
    {
        var group = Ids.NewId("fleet");
        var early = Ids.NewId("early");
        var late = Ids.NewId("late");
        var jobId = Ids.NewId("cont");
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/thing-groups/{group}", Json("{}")));
        foreach (var thing in new[] { early, late })
        {
            await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Json("{}")));
        }

        await ApiAssert.OkAsync(await node.Http.PutAsync("/api/thing-groups/addThingToThingGroup", Json($$"""{"thingGroupName":"{{group}}","thingName":"{{early}}"}""")));
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{jobId}", Json(new JsonObject
        {
            ["targets"] = new JsonArray($"arn:aws:iot:local:000000000000:thinggroup/{group}"),
            ["document"] = """{"do":"it"}""",
            ["targetSelection"] = "CONTINUOUS",
        }.ToJsonString())));
        await Eventually.True(async () => await StatusOfAsync(early, jobId) == "QUEUED", "the member's execution");
        Assert.Null(await StatusOfAsync(late, jobId));

        await ApiAssert.OkAsync(await node.Http.PutAsync("/api/thing-groups/addThingToThingGroup", Json($$"""{"thingGroupName":"{{group}}","thingName":"{{late}}"}""")));
        await Eventually.True(async () => await StatusOfAsync(late, jobId) == "QUEUED", "the later member's execution");

        await ApiAssert.OkAsync(await node.Http.PutAsync("/api/thing-groups/removeThingFromThingGroup", Json($$"""{"thingGroupName":"{{group}}","thingName":"{{late}}"}""")));
        Assert.Equal("REMOVED", await StatusOfAsync(late, jobId));
        var job = (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/jobs/{jobId}")))["job"]!;
        Assert.Equal("IN_PROGRESS", (string)job["status"]!);
        Assert.Equal(1, (int)job["jobProcessDetails"]!["numberOfQueuedThings"]!);
        Assert.Equal(1, (int)job["jobProcessDetails"]!["numberOfRemovedThings"]!);
        var listed = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/jobs?thingGroupName={group}"));
        Assert.Equal(jobId, (string)listed["jobs"]![0]!["jobId"]!);
    }

    /// <summary>docs/ota.md's shadow-driven recipe: the desired firmware and a signed URL in a named shadow; the device downloads and reports.</summary>
    [Fact]
    public async Task ShadowDrivenUpdate_DeltaCarriesTheSignedUrl_TheDeviceReports_AndTheDeltaIsGone()
    {
        var thing = Ids.NewId("shadowota");
        var prefix = $"$aws/things/{thing}/shadow/name/firmware";
        var firmware = RandomNumberGenerator.GetBytes(5000);
        var artifact = await UploadAsync(node.Http, firmware, "fw-3.0.bin");
        var url = (string)(await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/artifacts/{artifact["artifactId"]}/url?expiresInSec=600", null)))["url"]!;
        var device = await node.ConnectAsync(thing);
        var inbox = Inbox.Of(device);
        await device.SubscribeAsync($"{prefix}/update/delta", MqttQualityOfServiceLevel.AtLeastOnce);

        var desired = new JsonObject { ["version"] = "3.0", ["url"] = url, ["sha256"] = (string)artifact["sha256"]! };
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/things/{thing}/shadow?name=firmware",
            Json(new JsonObject { ["state"] = new JsonObject { ["desired"] = new JsonObject { ["firmware"] = desired } } }.ToJsonString())));
        var delta = JsonNode.Parse((await inbox.WaitAsync($"{prefix}/update/delta", 1, "the firmware delta"))[0])!["state"]!["firmware"]!;

        using var http = new HttpClient();
        var downloaded = await http.GetByteArrayAsync((string)delta["url"]!);
        Assert.Equal((string)delta["sha256"]!, Convert.ToHexStringLower(SHA256.HashData(downloaded)));
        await device.PublishStringAsync($"{prefix}/update",
            new JsonObject { ["state"] = new JsonObject { ["reported"] = new JsonObject { ["firmware"] = desired.DeepClone() } } }.ToJsonString(), MqttQualityOfServiceLevel.AtLeastOnce);

        var shadow = await Eventually.Get(
            async () => await ApiAssert.OkAsync(await node.Http.GetAsync($"/things/{thing}/shadow?name=firmware")),
            s => s["state"]!["reported"] is not null,
            "the reported firmware");
        Assert.Null(shadow["state"]!["delta"]);
        Assert.Equal("3.0", (string)shadow["state"]!["reported"]!["firmware"]!["version"]!);
    }

    [Fact]
    public async Task DeleteJobExecution_NeedsForceUnlessItEnded_AndTheJobForgetsIt()
    {
        var (done, busy) = (Ids.NewId("del-done"), Ids.NewId("del-busy"));
        var jobId = Ids.NewId("deljob");
        foreach (var thing in new[] { done, busy })
        {
            await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Json("{}")));
        }

        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{jobId}",
            Json(new JsonObject { ["targets"] = new JsonArray(ThingArn(done), ThingArn(busy)), ["document"] = "{}" }.ToJsonString())));
        await Eventually.True(async () => await StatusOfAsync(busy, jobId) == "QUEUED", "both queued");
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/things/{done}/jobs/{jobId}", Json("""{"status":"SUCCEEDED"}""")));

        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/things/{busy}/jobs/{jobId}/executionNumber/1"), HttpStatusCode.Conflict, "InvalidStateTransitionException");
        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/things/{done}/jobs/{jobId}/executionNumber/2"), HttpStatusCode.NotFound, "ResourceNotFoundException");
        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/things/{done}/jobs/{jobId}/executionNumber/1"));
        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/things/{busy}/jobs/{jobId}/executionNumber/1?force=true"));

        Assert.Null(await StatusOfAsync(done, jobId));
        var listed = await Eventually.Get(
            async () => (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/jobs/{jobId}/things")))["executionSummaries"]!.AsArray(),
            a => a.Count == 0,
            "the job forgot both executions");
        Assert.Empty(listed);
    }

    private async Task<string?> StatusOfAsync(string thing, string jobId)
    {
        var response = await node.Http.GetAsync($"/api/things/{thing}/jobs/{jobId}");
        return response.StatusCode == HttpStatusCode.NotFound ? null : (string?)(await ApiAssert.OkAsync(response))["execution"]!["status"];
    }
}
