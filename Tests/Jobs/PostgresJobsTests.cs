using System.Net;
using System.Security.Cryptography;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions.Jobs;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Jobs;

/// <summary>Jobs and artifacts on PostgreSQL across a node restart: the state, the signed URLs and the timeout reminder survive it.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresJobsTests(PostgresServer postgres)
{
    private sealed class PostgresNode(string connectionString) : NodeFixture
    {
        protected override IEnumerable<string> Settings => ["Iot:Storage=Postgres", $"ConnectionStrings:Iot={connectionString}", "Iot:Auth:AllowAnonymous=true"];
    }

    [Fact]
    public async Task AfterARestart_TheArtifactStillDownloads_AndTheInProgressTimeoutFiresByItsReminder()
    {
        var connectionString = await postgres.CreateDatabaseAsync("jobs");
        var thing = Ids.NewId("pgota");
        var jobId = Ids.NewId("pgjob");
        var firmware = RandomNumberGenerator.GetBytes(2_500_000);
        string url;
        var first = new PostgresNode(connectionString);
        await first.InitializeAsync();
        try
        {
            await ApiAssert.OkAsync(await first.Http.PostAsync($"/api/things/{thing}", JobsOverMqttTests.Json("{}")));
            var artifact = await JobsOverMqttTests.UploadAsync(first.Http, firmware, "fw.bin");
            await ApiAssert.OkAsync(await first.Http.PutAsync($"/api/jobs/{jobId}", JobsOverMqttTests.Json(new JsonObject
            {
                ["targets"] = new JsonArray(JobsOverMqttTests.ThingArn(thing)),
                ["document"] = $$"""{"url":"${iot:artifact-url:{{artifact["artifactId"]}}}"}""",
                ["timeoutConfig"] = new JsonObject { ["inProgressTimeoutInMinutes"] = 1 },
            }.ToJsonString())));
            var device = first.Cluster.GetGrain<IThingJobsGrain>(thing);
            await Eventually.True(async () => await device.Describe(jobId, null) is not null, "the execution queued");
            var started = await ApiAssert.OkAsync(await first.Http.PutAsync($"/things/{thing}/jobs/$next", JobsOverMqttTests.Json("""{"statusDetails":{"step":"download"}}""")));
            Assert.Equal("IN_PROGRESS", (string)started["execution"]!["status"]!);
            url = (string)started["execution"]!["jobDocument"]!["url"]!;
        }
        finally
        {
            await first.DisposeAsync();
        }

        // A new node on the same database: nobody calls the thing; its reminder wakes it at the deadline and the job hears of it.
        var second = new PostgresNode(connectionString);
        await second.InitializeAsync();
        try
        {
            using var download = new HttpClient();
            var moved = new UriBuilder(url) { Port = second.HttpPort }.Uri;
            Assert.Equal(firmware, await download.GetByteArrayAsync(moved));

            await Eventually.Get(
                async () => (await ApiAssert.OkAsync(await second.Http.GetAsync($"/api/jobs/{jobId}")))["job"]!,
                j => (int)j["jobProcessDetails"]!["numberOfTimedOutThings"]! == 1 && (string?)j["status"] == "COMPLETED",
                "the timeout reported by the thing's reminder, and the job complete",
                TimeSpan.FromSeconds(150));
            var execution = await ApiAssert.OkAsync(await second.Http.GetAsync($"/api/things/{thing}/jobs/{jobId}"));
            Assert.Equal("TIMED_OUT", (string)execution["execution"]!["status"]!);
            Assert.Equal(HttpStatusCode.OK, (await second.Http.GetAsync($"/api/artifacts")).StatusCode);
        }
        finally
        {
            await second.DisposeAsync();
        }
    }
}
