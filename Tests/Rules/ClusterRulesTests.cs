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
}
