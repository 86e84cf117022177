using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Jobs;

namespace OrleansIot.Tests.WebConsole;

/// <summary>
/// The web console in headless Chromium (Debian's <c>chromium</c>, driven by playwright-core from Tests/Clients): a
/// person signs in, searches the fleet, opens a device, changes its desired state and sees the state the device
/// (a real MQTT client here) reports back; watches a job reach done; reads the rules and the audit log. The pages'
/// screenshots are taken on the way (<see cref="Screenshots"/>; the README shows those in docs/screenshots).
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class ConsoleBrowserTests(NodeFixture node)
{
    /// <summary>
    /// Where the screenshots go: the README's (docs/screenshots) when <c>IOT_SCREENSHOTS=docs</c>, so that a test run does
    /// not rewrite tracked files; otherwise a directory of its own under the temp path (or the one IOT_SCREENSHOTS names).
    /// </summary>
    private static string Screenshots => Environment.GetEnvironmentVariable("IOT_SCREENSHOTS") switch
    {
        "docs" => Path.GetFullPath(Path.Combine(NodeClients.Folder, "..", "..", "docs", "screenshots")),
        { Length: > 0 } directory => Path.GetFullPath(directory),
        _ => Path.Combine(Path.GetTempPath(), "orleansiot-console-screenshots"),
    };

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task APerson_FindsADevice_ChangesItsDesiredState_AndWatchesTheDeviceReport()
    {
        var thing = Ids.NewId("lamp", 6);
        var room = Ids.NewId("hall", 6);
        await node.Http.PostAsync("/api/thing-types/lamp", Json("{}"));   // there already when another test made it
        var attributes = new JsonObject { ["room"] = room, ["model"] = "L2" };
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}",
            Json(new JsonObject { ["thingTypeName"] = "lamp", ["attributePayload"] = new JsonObject { ["attributes"] = attributes } }.ToJsonString())));

        // The device: answers every delta with the reported state it asks for, and carries out the job it is told
        // of (notify-next) by reporting it succeeded, as a real lamp would.
        using (var earlier = await node.ConnectAsync(thing, MqttProtocolVersion.V311))
        {
            await earlier.DisconnectAsync();   // a connection that ended: the device page's history lists it
        }

        using var device = await node.ConnectAsync(thing, MqttProtocolVersion.V311);
        device.ApplicationMessageReceivedAsync += async e =>
        {
            var message = JsonNode.Parse(Encoding.UTF8.GetString(e.ApplicationMessage.Payload))!;
            if (e.ApplicationMessage.Topic.EndsWith("/jobs/notify-next", StringComparison.Ordinal))
            {
                if (message["execution"]?["jobId"]?.GetValue<string>() is { } jobId)
                {
                    await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"$aws/things/{thing}/jobs/{jobId}/update")
                        .WithPayload("""{"status":"SUCCEEDED"}""").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                }

                return;
            }

            await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"$aws/things/{thing}/shadow/update")
                .WithPayload(new JsonObject { ["state"] = new JsonObject { ["reported"] = message["state"]!.DeepClone() } }.ToJsonString())
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        };
        await device.SubscribeAsync($"$aws/things/{thing}/jobs/notify-next", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.SubscribeAsync($"$aws/things/{thing}/shadow/update/delta", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"$aws/things/{thing}/shadow/update")
            .WithPayload("""{"state":{"reported":{"on":true}}}""").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

        var rule = Ids.NewId("console", 6).Replace('-', '_');
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/rules/{rule}", Json("""{"sql":"SELECT * FROM 'console/+/x'","actions":[{"republish":{"topic":"console/out"}}]}""")));

        var policy = Ids.NewId("console-policy", 6);
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policies/{policy}", Json(new JsonObject
        {
            ["policyDocument"] = """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}""",
        }.ToJsonString())));
        var newRule = Ids.NewId("made", 6).Replace('-', '_');

        // An alarm that is in ALARM while this lamp is connected.
        var alarm = Ids.NewId("lamp-connected", 6);
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/alarms/{alarm}", Json(new JsonObject
        {
            ["fleetQuery"] = new JsonObject { ["queryString"] = $"thingName:{thing} AND connectivity.connected:true" },
            ["comparisonOperator"] = "GreaterThanOrEqualToThreshold",
            ["threshold"] = 1,
            ["period"] = 1,
        }.ToJsonString())));

        // A job for the device, which it carries out when told of it.
        var job = Ids.NewId("console-job", 6);
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{job}",
            Json(new JsonObject { ["targets"] = new JsonArray(JobsOverMqttTests.ThingArn(thing)), ["document"] = """{"operation":"blink"}""" }.ToJsonString())));

        // The lamp's telemetry, a reading every 300 ms while the page is open: the device page charts it live.
        using var telemetryStop = new CancellationTokenSource();
        var telemetry = Task.Run(async () =>
        {
            using var every = new PeriodicTimer(TimeSpan.FromMilliseconds(300));
            try
            {
                for (var i = 0; await every.WaitForNextTickAsync(telemetryStop.Token); i++)
                {
                    await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"dt/{thing}/telemetry")
                        .WithPayload($$"""{"temperature":{{20 + (i % 5)}},"humidity":40}""").Build(), telemetryStop.Token);
                }
            }
            catch (OperationCanceledException) when (telemetryStop.IsCancellationRequested)
            {
                // the page test is over
            }
        });

        Directory.CreateDirectory(Screenshots);
        var result = await NodeClients.RunAsync("console.js", new JsonObject
        {
            ["base"] = node.Http.BaseAddress!.ToString().TrimEnd('/'),
            ["key"] = NodeFixture.AdminKey,
            ["thing"] = thing,
            ["room"] = room,
            ["desired"] = Ids.NewId("green", 6),
            ["job"] = job,
            ["rule"] = rule,
            ["newRule"] = newRule,
            ["policy"] = policy,
            ["alarm"] = alarm,
            ["screenshots"] = Screenshots,
        }, TimeSpan.FromMinutes(3));
        await telemetryStop.CancelAsync();
        await telemetry;
        Assert.True((await node.Http.GetAsync($"/api/rules/{newRule}")).IsSuccessStatusCode, "the rule made on the page exists");
        await node.Http.DeleteAsync($"/api/alarms/{alarm}");   // it evaluates every second for as long as it exists

        NodeClients.AssertPassed(result,
            "signInRefusesABadKey", "signsIn", "aBadQueryShowsTheError", "findsTheDevice", "devicePageShowsItsShadow", "liveTelemetryIsCharted", "connectionHistoryIsListed",
            "desiredChangeBringsTheReportedState", "usageShowsTheDevicesTraffic", "badDesiredJsonIsRefusedOnThePage", "jobProgressReachesDone",
            "rulesAreListed", "ruleTryItShowsTheOutput", "badSqlShowsTheError", "ruleCreatedFromThePage", "policiesAreListedAndReadable", "auditLogShowsTheChanges", "alarmShowsItsState", "clusterShowsThisNode", "dashboardOpensForAnAdmin", "signOutForgetsTheKey", "noScriptErrors");
        foreach (var page in new[] { "sign-in", "fleet", "device", "usage", "jobs", "rules", "security", "audit", "alarms", "cluster" })
        {
            Assert.True(new FileInfo(Path.Combine(Screenshots, $"{page}.png")).Length > 5_000, $"{page}.png");
        }
    }
}
