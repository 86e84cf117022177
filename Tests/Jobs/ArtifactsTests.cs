using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OrleansIot.Grains.Abstractions.Artifacts;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Jobs;

/// <summary>A node whose artifacts may be at most 200,000 bytes and which publishes AWS's registry and jobs events.</summary>
public sealed class SmallArtifactsNodeFixture : NodeFixture
{
    public const int MaxBytes = 200_000;

    protected override IEnumerable<string> Settings => [$"Iot:Artifacts:MaxBytes={MaxBytes}", "Iot:Registry:PublishEvents=true"];
}

/// <summary>The artifact API and signed downloads on a node: limits, tampering, conditional and range requests, deletion while in use.</summary>
public sealed class ArtifactsTests(SmallArtifactsNodeFixture node) : IClassFixture<SmallArtifactsNodeFixture>
{
    private static string WithQuery(string url, string name, string value)
    {
        var uri = new Uri(url);
        var query = System.Web.HttpUtility.ParseQueryString(uri.Query);
        query[name] = value;
        return $"{uri.GetLeftPart(UriPartial.Path)}?{query}";
    }

    [Fact]
    public async Task AnUploadOverTheLimit_IsRefusedWith413_WithOrWithoutALength_AndNothingIsKept()
    {
        var before = (await ApiAssert.OkAsync(await node.Http.GetAsync("/api/artifacts?maxResults=250")))["artifacts"]!.AsArray().Count;
        var sized = new ByteArrayContent(new byte[SmallArtifactsNodeFixture.MaxBytes + 1]);
        await ApiAssert.ProblemAsync(await node.Http.PostAsync("/api/artifacts?name=big.bin", sized), HttpStatusCode.RequestEntityTooLarge, "RequestEntityTooLargeException");

        // Streamed without Content-Length (chunked): refused when the limit is passed, mid-stream.
        var chunked = new StreamContent(new MemoryStream(new byte[SmallArtifactsNodeFixture.MaxBytes + 50_000]));
        chunked.Headers.ContentLength = null;
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/artifacts?name=big2.bin") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        await ApiAssert.ProblemAsync(await node.Http.SendAsync(request), HttpStatusCode.RequestEntityTooLarge, "RequestEntityTooLargeException");

        Assert.Equal(before, (await ApiAssert.OkAsync(await node.Http.GetAsync("/api/artifacts?maxResults=250")))["artifacts"]!.AsArray().Count);
        Assert.Empty(Directory.Exists(node.ArtifactDirectory) ? Directory.GetFiles(node.ArtifactDirectory, "*.partial") : []);

        var exact = await JobsOverMqttTests.UploadAsync(node.Http, new byte[SmallArtifactsNodeFixture.MaxBytes], "exact.bin");
        Assert.Equal(SmallArtifactsNodeFixture.MaxBytes, (long)exact["size"]!);
    }

    [Fact]
    public async Task SignedUrls_RefuseTamperingWith403_AndServeHeadConditionalAndRangeRequests()
    {
        var bytes = RandomNumberGenerator.GetBytes(1000);
        var artifact = await JobsOverMqttTests.UploadAsync(node.Http, bytes, "cfg.bin");
        var id = (string)artifact["artifactId"]!;
        var signed = await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/artifacts/{id}/url?expiresInSec=120", null));
        var url = (string)signed["url"]!;
        using var device = new HttpClient();

        var uri = new Uri(url);
        var query = System.Web.HttpUtility.ParseQueryString(uri.Query);
        var signature = query["signature"]!;
        var flipped = (signature[0] == 'a' ? 'b' : 'a') + signature[1..];
        foreach (var tampered in new[]
        {
            WithQuery(url, "signature", flipped),
            WithQuery(url, "expires", (long.Parse(query["expires"]!, System.Globalization.CultureInfo.InvariantCulture) + 3600).ToString(System.Globalization.CultureInfo.InvariantCulture)),
            url.Replace($"/artifacts/{id}", "/artifacts/other", StringComparison.Ordinal),
            uri.GetLeftPart(UriPartial.Path),
        })
        {
            await ApiAssert.ProblemAsync(await device.GetAsync(tampered), HttpStatusCode.Forbidden, "AccessDeniedException");
        }

        using var head = await device.SendAsync(new HttpRequestMessage(HttpMethod.Head, url));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
        Assert.Equal(1000, head.Content.Headers.ContentLength);
        Assert.Equal("bytes", head.Headers.AcceptRanges.Single());

        using var conditional = new HttpRequestMessage(HttpMethod.Get, url);
        conditional.Headers.IfNoneMatch.Add(new EntityTagHeaderValue($"\"{artifact["sha256"]}\""));
        Assert.Equal(HttpStatusCode.NotModified, (await device.SendAsync(conditional)).StatusCode);

        using var suffix = new HttpRequestMessage(HttpMethod.Get, url);
        suffix.Headers.Range = new RangeHeaderValue(null, 100);
        using var last = await device.SendAsync(suffix);
        Assert.Equal(HttpStatusCode.PartialContent, last.StatusCode);
        Assert.Equal(bytes[900..], await last.Content.ReadAsByteArrayAsync());

        using var beyond = new HttpRequestMessage(HttpMethod.Get, url);
        beyond.Headers.Range = new RangeHeaderValue(1000, null);
        using var unsatisfiable = await device.SendAsync(beyond);
        Assert.Equal(HttpStatusCode.RequestedRangeNotSatisfiable, unsatisfiable.StatusCode);
        Assert.Equal("bytes */1000", unsatisfiable.Content.Headers.ContentRange!.ToString());

        // An If-Range that no longer matches gets the whole file.
        using var stale = new HttpRequestMessage(HttpMethod.Get, url);
        stale.Headers.Range = new RangeHeaderValue(500, null);
        stale.Headers.IfRange = new RangeConditionHeaderValue(new EntityTagHeaderValue("\"old\""));
        using var whole = await device.SendAsync(stale);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.Equal(bytes, await whole.Content.ReadAsByteArrayAsync());

        await ApiAssert.ProblemAsync(await node.Http.PostAsync($"/api/artifacts/{id}/url?expiresInSec=30", null), HttpStatusCode.BadRequest, "InvalidRequestException");
        await ApiAssert.ProblemAsync(await node.Http.PostAsync($"/api/artifacts/{id}/url?expiresInSec=3601", null), HttpStatusCode.BadRequest, "InvalidRequestException");
    }

    [Fact]
    public async Task BytesMissingFromThisNodesStore_Are503_NotAServerError_AndNotCountedAsADownload()
    {
        var artifact = await JobsOverMqttTests.UploadAsync(node.Http, [9, 9, 9], "lost.bin");
        var id = (string)artifact["artifactId"]!;
        var url = (string)(await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/artifacts/{id}/url", null)))["url"]!;
        File.Delete(Path.Combine(node.ArtifactDirectory, id + ".bin"));   // as on a node of another machine

        using var device = new HttpClient();
        await ApiAssert.ProblemAsync(await device.GetAsync(url), HttpStatusCode.ServiceUnavailable, "ServiceUnavailableException");
        Assert.Equal(0, (long)(await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/artifacts/{id}")))["downloads"]!);
    }

    [Fact]
    public async Task AnArtifactAJobInProgressNeeds_CannotBeDeleted_UntilTheJobIsCanceled()
    {
        var thing = Ids.NewId("keeper");
        var jobId = Ids.NewId("uses");
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", JobsOverMqttTests.Json("{}")));
        var artifact = await JobsOverMqttTests.UploadAsync(node.Http, RandomNumberGenerator.GetBytes(10), "x.bin");
        var id = (string)artifact["artifactId"]!;
        var url = (string)(await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/artifacts/{id}/url", null)))["url"]!;
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{jobId}", JobsOverMqttTests.Json(new JsonObject
        {
            ["targets"] = new JsonArray(JobsOverMqttTests.ThingArn(thing)),
            ["document"] = $$"""{"url":"${iot:artifact-url:{{id}}}"}""",
        }.ToJsonString())));

        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/artifacts/{id}"), HttpStatusCode.Conflict, "ConflictException");
        using var device = new HttpClient();
        Assert.Equal(HttpStatusCode.OK, (await device.GetAsync(url)).StatusCode);

        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{jobId}/cancel", null));
        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/artifacts/{id}"));
        await ApiAssert.ProblemAsync(await device.GetAsync(url), HttpStatusCode.NotFound, "ResourceNotFoundException");
        await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/artifacts/{id}"), HttpStatusCode.NotFound, "ResourceNotFoundException");
    }
}

/// <summary>Jobs events reach subscribers and rules, as AWS's do once enabled.</summary>
public sealed class JobEventsTests(SmallArtifactsNodeFixture node) : IClassFixture<SmallArtifactsNodeFixture>
{
    [Fact]
    public async Task ARule_SelectsJobExecutionEvents_AndTheJobsCompletedEventReachesSubscribers()
    {
        var thing = Ids.NewId("ev");
        var jobId = Ids.NewId("evjob");
        var queue = Ids.NewId("jobevents");
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", JobsOverMqttTests.Json("{}")));
        await Rules.RuleActionsTests.CreateRuleAsync(node.Http, "job_events_" + Guid.NewGuid().ToString("N")[..8],
            $"SELECT jobId, status, topic(5) AS operation FROM '$aws/events/jobExecution/{jobId}/+'",
            [Rules.RuleActionsTests.Action("queue", new JsonObject { ["queueName"] = queue })]);
        var watcher = await node.ConnectAsync(Ids.NewId("watch"));
        var inbox = Sessions.Inbox.Of(watcher);
        await Sessions.SessionClients.SubscribeAsync(watcher, $"$aws/events/job/{jobId}/#", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce);
        var platformRules = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<OrleansIot.Gateway.Telemetry.RuleTopics>(node.App.Services);
        await Eventually.True(() => Task.FromResult(platformRules.Wants($"$aws/events/jobExecution/{jobId}/failed")), "the node reads the rule");

        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{jobId}",
            JobsOverMqttTests.Json(new JsonObject { ["targets"] = new JsonArray(JobsOverMqttTests.ThingArn(thing)), ["document"] = "{}" }.ToJsonString())));
        var device = await node.ConnectAsync(thing);
        var deviceInbox = Sessions.Inbox.Of(device);
        await Eventually.True(async () => (await node.Http.GetStringAsync($"/api/things/{thing}/jobs")).Contains(jobId, StringComparison.Ordinal), "the execution queued");
        var answer = await JobsOverMqttTests.RequestAsync(device, deviceInbox, $"$aws/things/{thing}/jobs/{jobId}/update", """{"status":"FAILED","statusDetails":{"why":"battery"}}""");
        Assert.Equal("accepted", (string)answer["$topic"]!);

        var events = await Rules.RuleActionsTests.DrainQueueAsync(node.Http, queue, 1, "the rule's copy of the failed event");
        Assert.Equal(("FAILED", "failed", jobId), ((string)events[0]["status"]!, (string)events[0]["operation"]!, (string)events[0]["jobId"]!));
        var completed = JsonNode.Parse((await inbox.WaitAsync($"$aws/events/job/{jobId}/completed", 1, "the job's completed event"))[0])!;
        Assert.Equal(("JOB", "COMPLETED", 1), ((string)completed["eventType"]!, (string)completed["status"]!, (int)completed["jobProcessDetails"]!["numberOfFailedThings"]!));
    }
}

/// <summary>Signed URLs against the clock: valid until their expiry, not a second after.</summary>
[Collection(FakeClockClusterCollection.Name)]
public sealed class ArtifactUrlTests(FakeClockClusterFixture fixture)
{
    [Fact]
    public async Task AUrl_IsValidUntilItsExpiry_AndPlaceholdersExpandToFreshJsonSafeUrls()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2030, 5, 1, 12, 0, 0, TimeSpan.Zero));
        var urls = new ArtifactUrls(fixture.Grains, Options.Create(new ArtifactOptions { BaseUrl = "https://iot.example.com:8443/" }), clock);
        var (url, expires) = await urls.SignAsync("fw-1", 300);
        Assert.Equal(clock.GetUtcNow().AddSeconds(300), expires);
        Assert.StartsWith("https://iot.example.com:8443/artifacts/fw-1?expires=", url, StringComparison.Ordinal);
        var query = System.Web.HttpUtility.ParseQueryString(new Uri(url).Query);

        clock.Advance(TimeSpan.FromSeconds(300));
        Assert.True(await urls.VerifyAsync("fw-1", query["expires"], query["signature"]));
        clock.Advance(TimeSpan.FromSeconds(1));
        Assert.False(await urls.VerifyAsync("fw-1", query["expires"], query["signature"]));

        var document = await urls.ExpandAsync("""{"a":"${iot:artifact-url:fw-1}","b":"${iot:artifact-url:fw-2}","c":"${iot:other}"}""", 60);
        var parsed = JsonNode.Parse(document)!;
        Assert.Contains("/artifacts/fw-1?expires=", (string)parsed["a"]!, StringComparison.Ordinal);
        Assert.Contains("/artifacts/fw-2?expires=", (string)parsed["b"]!, StringComparison.Ordinal);
        Assert.Equal("${iot:other}", (string)parsed["c"]!);
        Assert.Equal(["fw-1", "fw-2"], ArtifactUrls.Referenced("""{"a":"${iot:artifact-url:fw-1}","b":"${iot:artifact-url:fw-2}"}"""));
    }
}
