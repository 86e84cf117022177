using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Storage;

/// <summary>
/// Backup and restore as deploy/README.md tells operators: pg_dump of a node's database, pg_restore into an empty one,
/// and a node on the restored database has everything the first one was told.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class BackupRestoreTests(PostgresServer postgres)
{
    private static Dictionary<string, string> PostgresMode(string connectionString, string clusterId) => new()
    {
        ["Iot__Storage"] = "Postgres",
        ["ConnectionStrings__Iot"] = connectionString,
        ["Orleans__ClusterId"] = clusterId,   // a new cluster on the restored database; the service id (state's key) is the same
    };

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static StringContent Json(JsonNode json) => Json(json.ToJsonString());

    [Fact]
    public async Task ADumpRestoredIntoAnEmptyDatabase_BringsBackThingsShadowsCertificatesPoliciesRulesJobsRetainedAndTheCa()
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var (thing, policy, rule, job) = ($"saved-{id}", $"keep-{id}", $"keep_{id}", $"keep-job-{id}");
        var source = await postgres.CreateDatabaseAsync("backup");
        string ca;
        string certificateId;
        await using (var before = SiloProcess.Start(PostgresMode(source, $"before-{id}")))
        {
            await before.WaitUntilReadyAsync();
            await ApiAssert.OkAsync(await before.Http.PostAsync($"/api/things/{thing}", Json("""{"attributePayload":{"attributes":{"site":"lisbon"}}}""")));
            await ApiAssert.OkAsync(await before.Http.PostAsync($"/things/{thing}/shadow", Json("""{"state":{"reported":{"fw":"1.2"},"desired":{"fw":"1.3"}}}""")));
            await ApiAssert.OkAsync(await before.Http.PostAsync($"/api/policies/{policy}", Json(new JsonObject
            {
                ["policyDocument"] = """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}""",
            })));
            var certificate = await ApiAssert.OkAsync(await before.Http.PostAsync("/api/keys-and-certificate?setAsActive=true", null));
            certificateId = (string)certificate["certificateId"]!;
            await ApiAssert.OkAsync(await before.Http.PutAsync($"/api/target-policies/{policy}", Json(new JsonObject { ["target"] = (string)certificate["certificateArn"]! })));
            await ApiAssert.OkAsync(await before.Http.PostAsync($"/api/rules/{rule}", Json("""{"sql":"SELECT * FROM 'keep/+/x'","actions":[{"republish":{"topic":"kept/out"}}]}""")));
            await ApiAssert.OkAsync(await before.Http.PutAsync($"/api/jobs/{job}", Json(new JsonObject
            {
                ["targets"] = new JsonArray($"arn:aws:iot:local:000000000000:thing/{thing}"),
                ["document"] = """{"operation":"reboot"}""",
            })));
            using (var device = await before.ConnectAsync(thing))
            {
                var stored = await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"cfg/{thing}").WithPayload("v7").WithRetainFlag()
                    .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                Assert.True(stored.IsSuccess);   // PUBACK: the retained message is in PostgreSQL
            }

            ca = (string)(await ApiAssert.OkAsync(await before.Http.GetAsync("/api/cacertificate")))["certificateId"]!;
        }

        var restored = await postgres.CreateDatabaseAsync("restored");
        var dump = Path.Combine(Path.GetTempPath(), $"orleansiot-{id}.dump");
        try
        {
            await postgres.DumpAndRestoreAsync(source, restored, dump);
        }
        finally
        {
            File.Delete(dump);
        }

        await using var after = SiloProcess.Start(PostgresMode(restored, $"after-{id}"));
        await after.WaitUntilReadyAsync();
        Assert.Equal("lisbon", (string)(await ApiAssert.OkAsync(await after.Http.GetAsync($"/api/things/{thing}")))["attributes"]!["site"]!);
        var shadow = await ApiAssert.OkAsync(await after.Http.GetAsync($"/things/{thing}/shadow"));
        Assert.Equal(("1.2", "1.3", "1.3"), ((string)shadow["state"]!["reported"]!["fw"]!, (string)shadow["state"]!["desired"]!["fw"]!, (string)shadow["state"]!["delta"]!["fw"]!));
        Assert.Contains("iot:Connect", (string)(await ApiAssert.OkAsync(await after.Http.GetAsync($"/api/policies/{policy}")))["policyDocument"]!, StringComparison.Ordinal);
        Assert.Equal("ACTIVE", (string)(await ApiAssert.OkAsync(await after.Http.GetAsync($"/api/certificates/{certificateId}")))["certificateDescription"]!["status"]!);
        var attached = await ApiAssert.OkAsync(await after.Http.PostAsync($"/api/policy-targets/{policy}", null));
        Assert.Contains(certificateId, attached.ToJsonString(), StringComparison.Ordinal);
        Assert.Contains("keep/+/x", (string)(await ApiAssert.OkAsync(await after.Http.GetAsync($"/api/rules/{rule}")))["rule"]!["sql"]!, StringComparison.Ordinal);
        Assert.Equal("IN_PROGRESS", (string)(await ApiAssert.OkAsync(await after.Http.GetAsync($"/api/jobs/{job}")))["job"]!["status"]!);
        var retained = await ApiAssert.OkAsync(await after.Http.GetAsync($"/api/retainedMessage/{Uri.EscapeDataString($"cfg/{thing}")}"));
        Assert.Equal("v7", Encoding.UTF8.GetString(Convert.FromBase64String((string)retained["payload"]!)));
        Assert.Equal(ca, (string)(await ApiAssert.OkAsync(await after.Http.GetAsync("/api/cacertificate")))["certificateId"]!);

        // The job's device, on the restored cluster, is told of its job.
        using var again = await after.ConnectAsync(thing);
        var inbox = Sessions.Inbox.Of(again);
        var next = await Jobs.JobsOverMqttTests.RequestAsync(again, inbox, $"$aws/things/{thing}/jobs/start-next", "{}");
        Assert.Equal(job, (string)next["execution"]!["jobId"]!);
    }
}
