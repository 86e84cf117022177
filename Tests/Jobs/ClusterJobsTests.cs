using System.Text.Json.Nodes;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Jobs;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;

namespace OrleansIot.Tests.Jobs;

/// <summary>Jobs on the two-silo cluster: the job, the things' executions and the catalog on different silos.</summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterJobsTests(ClusterFixture fixture)
{
    private IGrainFactory Grains => fixture.Grains;

    [Fact]
    public async Task AJobOverAGroupOfTwentyThings_RunsToCompletion_WithEachThingsOutcomeCounted()
    {
        var group = Ids.NewId("cgroup");
        await Grains.GetGrain<IThingGroupGrain>(group).Create(null, null, null);
        var things = Enumerable.Range(0, 20).Select(_ => Ids.NewId("cthing")).ToList();
        foreach (var thing in things)
        {
            await Grains.GetGrain<IThingGrain>(thing).CreateThing(null, null);
            await Grains.GetGrain<IThingGrain>(thing).AddToThingGroup(group);
        }

        var jobId = Ids.NewId("cjob");
        await Grains.GetGrain<IJobGrain>(jobId).Create(new JobSpec(
            [$"arn:aws:iot:local:000000000000:thinggroup/{group}"], """{"op":"x"}""", null, null, null, null, null, null, null, null, null, null));
        await Eventually.Get(() => Grains.GetGrain<IJobGrain>(jobId).Describe(), j => j!.ProcessDetails.NumberOfQueuedThings == 20, "twenty queued");

        // The things answer at once, from the client, so their reports interleave with each other on the job.
        await Task.WhenAll(things.Select((thing, i) => Grains.GetGrain<IThingJobsGrain>(thing).Update(
            jobId, new JobExecutionUpdate(i % 4 == 0 ? JobStatus.Failed : i % 5 == 0 ? JobStatus.Rejected : JobStatus.Succeeded, null, null, null, null))));

        var job = await Eventually.Get(() => Grains.GetGrain<IJobGrain>(jobId).Describe(), j => j!.Status == JobStatus.Completed, "the job completed");
        Assert.Equal((5, 3, 12), (job!.ProcessDetails.NumberOfFailedThings, job.ProcessDetails.NumberOfRejectedThings, job.ProcessDetails.NumberOfSucceededThings));
        var page = await Grains.GetGrain<IJobGrain>(jobId).ListExecutions(JobStatus.Failed, null, 3);
        Assert.Equal(3, page.Items.Count);
        Assert.NotNull(page.NextToken);
        var rest = await Grains.GetGrain<IJobGrain>(jobId).ListExecutions(JobStatus.Failed, page.NextToken, 3);
        Assert.Equal(2, rest.Items.Count);
        Assert.Null(rest.NextToken);
    }
}

/// <summary>Jobs across two real nodes: the job made through one node's API, the device connected to the other.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class TwoNodeJobsTests(TwoNodeFixture nodes)
{
    [Fact]
    public async Task ADeviceOnTheOtherNode_HearsNotifyNext_AndItsRequestsAreAnsweredThere()
    {
        var thing = Ids.NewId("far");
        var jobId = Ids.NewId("farjob");
        await ApiAssert.OkAsync(await nodes.A.Http.PostAsync($"/api/things/{thing}", JobsOverMqttTests.Json("{}")));
        var device = await nodes.B.ConnectAsync(thing);
        var inbox = Inbox.Of(device);
        await device.SubscribeAsync($"$aws/things/{thing}/jobs/notify-next", MqttQualityOfServiceLevel.AtLeastOnce);
        var artifact = await JobsOverMqttTests.UploadAsync(nodes.A.Http, [1, 2, 3, 4], "small.bin");

        await ApiAssert.OkAsync(await nodes.A.Http.PutAsync($"/api/jobs/{jobId}", JobsOverMqttTests.Json(new JsonObject
        {
            ["targets"] = new JsonArray(JobsOverMqttTests.ThingArn(thing)),
            ["document"] = $$"""{"url":"${iot:artifact-url:{{artifact["artifactId"]}}}"}""",
        }.ToJsonString())));

        var next = JsonNode.Parse((await inbox.WaitAsync($"$aws/things/{thing}/jobs/notify-next", 1, "notify-next on the other node"))[0])!;
        Assert.Equal(jobId, (string)next["execution"]!["jobId"]!);
        var started = await JobsOverMqttTests.RequestAsync(device, inbox, $"$aws/things/{thing}/jobs/start-next", "{}");
        Assert.Equal("IN_PROGRESS", (string)started["execution"]!["status"]!);

        // The URL names node A (its own listener); node B serves it too: any node checks any node's signature.
        var url = new UriBuilder((string)started["execution"]!["jobDocument"]!["url"]!) { Port = nodes.B.HttpPort }.Uri;
        using var http = new HttpClient();
        Assert.Equal([1, 2, 3, 4], await http.GetByteArrayAsync(url));

        var done = await JobsOverMqttTests.RequestAsync(device, inbox, $"$aws/things/{thing}/jobs/{jobId}/update", """{"status":"SUCCEEDED"}""");
        Assert.Equal("accepted", (string)done["$topic"]!);
        await Eventually.True(async () => (await nodes.B.Http.GetStringAsync($"/api/jobs/{jobId}")).Contains("\"status\":\"COMPLETED\"", StringComparison.Ordinal), "the job completed");
    }
}
