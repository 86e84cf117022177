using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;

namespace OrleansIot.Tests.Rules;

/// <summary>A rule on two nodes: created through one node's API, fed by a device on the other, its output received on the first.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ClusterRulesTests(TwoNodeFixture nodes)
{
    [Fact]
    public async Task RuleCreatedOnA_EvaluatesMessagesPublishedOnB_OutputReachesSubscribersOnA()
    {
        var name = "c_" + Guid.NewGuid().ToString("N")[..10];
        var root = Ids.NewId("cr");
        var rule = new JsonObject
        {
            ["sql"] = $"SELECT value * 2 AS doubled FROM '{root}/#'",
            ["actions"] = new JsonArray(new JsonObject { ["republish"] = new JsonObject { ["topic"] = $"out/{root}", ["qos"] = 1 } }),
        };
        var created = await nodes.A.Http.PostAsync($"/api/rules/{name}", new StringContent(rule.ToJsonString(), Encoding.UTF8, "application/json"));
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        var (app, inbox, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"out/{root}", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await nodes.B.ConnectAsync(Ids.NewId("dev"));

        await device.PublishStringAsync($"{root}/x", "{\"value\":21}", MqttQualityOfServiceLevel.AtLeastOnce);

        Assert.Equal(["{\"doubled\":42}"], await inbox.WaitAsync($"out/{root}", 1, "the rule's output on node A"));
    }

    [Fact]
    public async Task DevicesOnB_FeedTheSinkAndAQueue_ReadThroughA()
    {
        var root = Ids.NewId("cs");
        var queue = "cq-" + Guid.NewGuid().ToString("N")[..8];
        await RuleActionsTests.CreateRuleAsync(nodes.B.Http, "cs_" + Guid.NewGuid().ToString("N")[..10],
            $"SELECT temperature, topic(2) AS device FROM '{root}/+/telemetry'",
            [RuleActionsTests.Action("fanout", new JsonObject
            {
                ["actions"] = new JsonArray(
                    RuleActionsTests.Action("timeseries", new JsonObject { ["thingName"] = "${topic(2)}" }),
                    RuleActionsTests.Action("queue", new JsonObject { ["queueName"] = queue })),
            })]);

        // Eight devices: their partitions (and so their evaluators) are spread over both nodes.
        var things = Enumerable.Range(0, 8).Select(i => Ids.NewId($"th{i}")).ToList();
        foreach (var (thing, i) in things.Select((t, i) => (t, i)))
        {
            var device = await nodes.B.ConnectAsync(thing);
            await device.PublishStringAsync($"{root}/{thing}/telemetry", $"{{\"temperature\":{i}}}", MqttQualityOfServiceLevel.AtLeastOnce);
        }

        foreach (var (thing, i) in things.Select((t, i) => (t, i)))
        {
            var points = await Eventually.Get(
                async () => JsonNode.Parse(await nodes.A.Http.GetStringAsync($"/api/telemetry?thingName={thing}&path=temperature"))!["points"]!.AsArray(),
                p => p.Count == 1, $"{thing}'s point, read through A");
            Assert.Equal(i, (int)points[0]!["value"]!);
        }

        var queued = await RuleActionsTests.DrainQueueAsync(nodes.A.Http, queue, 8, "eight queued outputs, received through A");
        Assert.Equal(things.Order(StringComparer.Ordinal), queued.Select(q => (string)q["device"]!).Order(StringComparer.Ordinal));
    }
}
