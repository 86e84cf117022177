using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Usage;

/// <summary><c>GET /api/usage</c> after traffic a test generated: the counts are that traffic, per thing and per group.</summary>
[Collection(NodeCollection.Name)]
public sealed class UsageApiTests(NodeFixture node)
{
    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static MqttApplicationMessage Message(string topic, string payload) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();

    private Task<JsonObject> UsageAsync(string query) => Task.Run(async () => (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/usage?{query}"))).AsObject());

    [Fact]
    public async Task UsageCounts_AreTheTrafficAThingMade_AndAGroupSumsItsMembers()
    {
        var (thing, other, group) = (Ids.NewId("meter"), Ids.NewId("meter"), Ids.NewId("metered"));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Json("{}")));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{other}", Json("{}")));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/thing-groups/{group}", Json("{}")));
        foreach (var member in new[] { thing, other })
        {
            await ApiAssert.OkAsync(await node.Http.PutAsync("/api/thing-groups/addThingToThingGroup", Json($$"""{"thingGroupName":"{{group}}","thingName":"{{member}}"}""")));
        }

        using var device = await node.ConnectAsync(thing);
        var received = 0;
        device.ApplicationMessageReceivedAsync += _ =>
        {
            Interlocked.Increment(ref received);
            return Task.CompletedTask;
        };
        await device.SubscribeAsync($"t/{thing}/in", MqttQualityOfServiceLevel.AtLeastOnce);
        for (var i = 0; i < 3; i++)
        {
            await device.PublishAsync(Message($"t/{thing}/out", "0123456789"));   // 3 in, 30 bytes
        }

        using var backend = await node.ConnectAsync(other);
        await backend.PublishAsync(Message($"t/{thing}/in", "abcde"));            // the other thing: 2 in, 10 bytes
        await backend.PublishAsync(Message($"t/{thing}/in", "fghij"));            // the device: 2 out, 10 bytes
        await Eventually.True(() => Task.FromResult(Volatile.Read(ref received) == 2), "the device to get both");

        await ApiAssert.OkAsync(await node.Http.PostAsync($"/things/{thing}/shadow", Json("""{"state":{"reported":{"on":true}}}""")));
        await ApiAssert.OkAsync(await node.Http.GetAsync($"/things/{thing}/shadow"));
        Assert.Equal(HttpStatusCode.BadRequest, (await node.Http.PostAsync($"/things/{thing}/shadow", Json("{not json"))).StatusCode);

        var today = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var usage = await Eventually.Get(
            () => UsageAsync($"thingName={thing}&from={today}&to={today}"),
            u => u["total"]!["messagesIn"]!.GetValue<long>() == 3 && u["total"]!["messagesOut"]!.GetValue<long>() == 2,
            "the gateway's usage flush");
        var total = usage["total"]!;
        Assert.Equal((3L, 30L, 2L, 10L, 3L), (total["messagesIn"]!.GetValue<long>(), total["bytesIn"]!.GetValue<long>(),
            total["messagesOut"]!.GetValue<long>(), total["bytesOut"]!.GetValue<long>(), total["shadowOperations"]!.GetValue<long>()));
        // The open connection's minutes grow as it stays open (reported to the hundredth of a minute).
        await Eventually.True(
            async () => (await UsageAsync($"thingName={thing}&from={today}&to={today}"))["total"]!["connectedMinutes"]!.GetValue<double>() > 0,
            "the open connection's minutes");
        Assert.Single(usage["days"]!.AsArray());
        Assert.Equal(today, usage["days"]![0]!["date"]!.GetValue<string>());

        var sum = await Eventually.Get(
            () => UsageAsync($"thingGroupName={group}&from={today}&to={today}"),
            u => u["total"]!["messagesIn"]!.GetValue<long>() == 5,
            "the group's sum");
        Assert.Equal(2, sum["things"]!.GetValue<int>());
        Assert.Equal(40, sum["total"]!["bytesIn"]!.GetValue<long>());

        // The default range: the last 7 days, today last.
        var week = await UsageAsync($"thingName={thing}");
        Assert.Equal(7, week["days"]!.AsArray().Count);
        Assert.Equal(today, week["days"]![6]!["date"]!.GetValue<string>());
    }

    [Fact]
    public async Task RulesItsMessagesTriggered_AndJobExecutionsThatEnded_CountInAThingsUsage()
    {
        var (thing, rule, jobId) = (Ids.NewId("ruled"), "usage_" + Guid.NewGuid().ToString("N")[..10], Ids.NewId("usagejob"));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Json("{}")));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/rules/{rule}", Json(new JsonObject
        {
            ["sql"] = $"SELECT v FROM 'ru/{thing}/x' WHERE v > 1",
            ["actions"] = new JsonArray(new JsonObject { ["republish"] = new JsonObject { ["topic"] = $"ru/{thing}/out", ["qos"] = 1 } }),
        }.ToJsonString())));

        using var device = await node.ConnectAsync(thing);
        var inbox = Sessions.Inbox.Of(device);
        await device.SubscribeAsync($"ru/{thing}/out", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.SubscribeAsync($"$aws/things/{thing}/jobs/notify-next", MqttQualityOfServiceLevel.AtLeastOnce);
        foreach (var v in new[] { 1, 2, 3 })
        {
            await device.PublishAsync(Message($"ru/{thing}/x", $$"""{"v":{{v}}}"""));   // the WHERE passes twice
        }

        await inbox.WaitAsync($"ru/{thing}/out", 2, "the rule's two outputs");

        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{jobId}", Jobs.JobsOverMqttTests.Json(new JsonObject
        {
            ["targets"] = new JsonArray(Jobs.JobsOverMqttTests.ThingArn(thing)),
            ["document"] = """{"op":"reboot"}""",
        }.ToJsonString())));
        // A job is rolled out after CreateJob answers (as on AWS): the device starts it once it is told of it.
        await inbox.WaitAsync($"$aws/things/{thing}/jobs/notify-next", 1, "the job's notify-next");
        var started = await Jobs.JobsOverMqttTests.RequestAsync(device, inbox, $"$aws/things/{thing}/jobs/start-next", "{}");
        Assert.Equal(jobId, (string)started["execution"]!["jobId"]!);
        Assert.Equal(0, await UsageCountAsync(thing, "jobExecutions"));   // started is not ended
        await Jobs.JobsOverMqttTests.RequestAsync(device, inbox, $"$aws/things/{thing}/jobs/{jobId}/update", """{"status":"SUCCEEDED"}""");

        var today = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var usage = await Eventually.Get(
            () => UsageAsync($"thingName={thing}&from={today}&to={today}"),
            u => u["total"]!["ruleExecutions"]!.GetValue<long>() >= 2 && u["total"]!["jobExecutions"]!.GetValue<long>() >= 1,
            "the evaluators' and the jobs' counts");
        Assert.Equal((2L, 1L), (usage["total"]!["ruleExecutions"]!.GetValue<long>(), usage["total"]!["jobExecutions"]!.GetValue<long>()));
        Assert.Equal((2L, 1L), (usage["days"]![0]!["ruleExecutions"]!.GetValue<long>(), usage["days"]![0]!["jobExecutions"]!.GetValue<long>()));
    }

    private async Task<long> UsageCountAsync(string thing, string counter) =>
        (await UsageAsync($"thingName={thing}"))["total"]![counter]!.GetValue<long>();

    [Theory]
    [InlineData("", 400, "InvalidRequestException")]
    [InlineData("thingName=a&thingGroupName=b", 400, "InvalidRequestException")]
    [InlineData("thingName=a&from=2026-13-01", 400, "InvalidRequestException")]
    [InlineData("thingName=a&from=2026-02-02&to=2026-02-01", 400, "InvalidRequestException")]
    [InlineData("thingName=a&from=2020-01-01&to=2026-01-01", 400, "InvalidRequestException")]
    [InlineData("thingName=never-seen-thing-usage", 404, "ResourceNotFoundException")]
    [InlineData("thingGroupName=no-such-group-usage", 404, "ResourceNotFoundException")]
    public async Task BadRequests_AreRefusedWithAwsErrors(string query, int status, string code)
    {
        await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/usage?{query}"), (HttpStatusCode)status, code);
    }
}
