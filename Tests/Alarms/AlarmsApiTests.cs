using System.Collections.Concurrent;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Alarms;

/// <summary>
/// Alarms through the API on a node: a fleet-statistic alarm fires when the fleet changes and clears when it changes
/// back; its state changes reach a subscriber and a rule selecting them; bad definitions get AWS's errors.
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class AlarmsApiTests(NodeFixture node)
{
    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task AFleetAlarm_FiresAndClears_ItsEventsReachSubscribersAndRules()
    {
        var prefix = Ids.NewId("alarmed", 6);
        var name = Ids.NewId("lamps-online", 6);
        var events = new ConcurrentQueue<(string Topic, JsonNode Payload)>();
        using var watcher = await node.ConnectAsync(Ids.NewId("watcher"));
        watcher.ApplicationMessageReceivedAsync += e =>
        {
            events.Enqueue((e.ApplicationMessage.Topic, JsonNode.Parse(Encoding.UTF8.GetString(e.ApplicationMessage.Payload))!));
            return Task.CompletedTask;
        };
        await watcher.SubscribeAsync($"$aws/events/alarms/{name}/state", MqttQualityOfServiceLevel.AtLeastOnce);
        await watcher.SubscribeAsync($"alarm-actions/{name}", MqttQualityOfServiceLevel.AtLeastOnce);

        // A rule acting on the alarm's events, as on lifecycle events.
        var rule = Ids.NewId("on_alarm", 6).Replace('-', '_');
        var ruleBody = new JsonObject
        {
            ["sql"] = $"SELECT alarmName, state FROM '$aws/events/alarms/+/state' WHERE alarmName = '{name}'",
            ["actions"] = new JsonArray(new JsonObject { ["republish"] = new JsonObject { ["topic"] = "alarm-actions/${alarmName}" } }),
        };
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/rules/{rule}", Json(ruleBody.ToJsonString())));

        var created = await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/alarms/{name}", Json($$"""
            {"alarmDescription":"two lamps registered","fleetQuery":{"queryString":"thingName:{{prefix}}*","statistic":"count"},
             "comparisonOperator":"GreaterThanOrEqualToThreshold","threshold":2,"period":1,"evaluationPeriods":1}
            """)));
        Assert.Equal("INSUFFICIENT_DATA", created["state"]!.GetValue<string>());

        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{prefix}-a", Json("{}")));
        var ok = await Eventually.Get(() => Task.FromResult(events.Where(e => e.Topic.StartsWith("$aws", StringComparison.Ordinal)).ToList()), l => l.Count >= 1, "the first datapoint (1 thing: OK)");
        Assert.Equal("OK", ok[0].Payload["state"]!.GetValue<string>());

        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{prefix}-b", Json("{}")));
        await Eventually.True(() => Task.FromResult(events.Any(e => e.Topic.StartsWith("$aws", StringComparison.Ordinal) && e.Payload["state"]!.GetValue<string>() == "ALARM")), "ALARM at 2 things");
        await Eventually.True(() => Task.FromResult(events.Any(e => e.Topic == $"alarm-actions/{name}" && e.Payload["state"]!.GetValue<string>() == "ALARM")), "the rule's action on ALARM");

        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/things/{prefix}-b"));
        await Eventually.True(() => Task.FromResult(events.Count(e => e.Topic.StartsWith("$aws", StringComparison.Ordinal) && e.Payload["state"]!.GetValue<string>() == "OK") == 2), "OK again at 1 thing");

        var described = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/alarms/{name}"));
        Assert.Equal("OK", described["state"]!.GetValue<string>());
        Assert.Equal(["OK", "ALARM", "OK"], described["history"]!.AsArray().Take(3).Select(h => h!["to"]!.GetValue<string>()));
        var listed = await ApiAssert.OkAsync(await node.Http.GetAsync("/api/alarms"));
        Assert.Contains(listed["metricAlarms"]!.AsArray(), a => a!["alarmName"]!.GetValue<string>() == name);
        var audit = await ApiAssert.OkAsync(await node.Http.GetAsync("/api/audit?operation=SetAlarmState&maxResults=100"));
        Assert.Contains(audit["events"]!.AsArray(), e => e!["target"]!.GetValue<string>() == $"{name}: OK -> ALARM");

        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/alarms/{name}"));
        await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/alarms/{name}"), HttpStatusCode.NotFound, "ResourceNotFoundException");
    }

    [Theory]
    [InlineData("ok-name", """{"metricName":"Connections","comparisonOperator":"Above","threshold":1,"period":1}""", 400, "InvalidRequestException")]
    [InlineData("ok-name", """{"metricName":"Connections","threshold":1,"period":1}""", 400, "InvalidRequestException")]
    [InlineData("ok-name", """{"metricName":"Connections","comparisonOperator":"LessThanThreshold","period":1}""", 400, "InvalidRequestException")]
    [InlineData("ok-name", """{"fleetQuery":{"queryString":"thingName:*x"},"comparisonOperator":"LessThanThreshold","threshold":1,"period":1}""", 400, "InvalidQueryException")]
    [InlineData("bad name", """{"metricName":"Connections","comparisonOperator":"LessThanThreshold","threshold":1,"period":1}""", 400, "InvalidRequestException")]
    public async Task BadAlarms_AreRefusedWithAwsErrors(string alarmName, string body, int status, string code)
    {
        var name = alarmName == "ok-name" ? Ids.NewId("bad-alarm") : alarmName;
        await ApiAssert.ProblemAsync(await node.Http.PutAsync($"/api/alarms/{Uri.EscapeDataString(name)}", Json(body)), (HttpStatusCode)status, code);
        if (alarmName == "ok-name")
        {
            await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/alarms/{name}"), HttpStatusCode.NotFound, "ResourceNotFoundException");
        }
    }
}
