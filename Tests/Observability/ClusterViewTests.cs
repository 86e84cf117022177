using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Observability;

/// <summary><c>GET /api/nodes</c> on a two-node cluster: every node, with its own connections and message counts.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ClusterViewTests(TwoNodeFixture nodes)
{
    private static async Task<JsonArray> NodesAsync(NodeFixture through) =>
        (await through.Http.GetFromJsonAsync<JsonObject>("/api/nodes"))!["nodes"]!.AsArray();

    /// <summary>A node's entry: its name ends with its HTTP port (<c>{machine}:{port}</c>).</summary>
    private static JsonNode Of(JsonArray list, NodeFixture node) =>
        list.Single(n => n!["name"]!.GetValue<string>().EndsWith($":{node.HttpPort}", StringComparison.Ordinal))!;

    [Fact]
    public async Task EachNode_IsListedByEitherNode_WithItsOwnConnectionsAndMessages()
    {
        var before = await Eventually.Get(() => NodesAsync(nodes.B), list => list.Count == 2, "both nodes to report");
        var publishedBefore = Of(before, nodes.B)["publishIn"]!.GetValue<long>();

        var id = Ids.NewId("view");
        var onA = new List<IMqttClient>();
        for (var i = 0; i < 3; i++)
        {
            onA.Add(await nodes.A.ConnectAsync($"{id}-a{i}"));
        }

        using var onB = await nodes.B.ConnectAsync($"{id}-b");
        for (var i = 0; i < 4; i++)
        {
            await onB.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"v/{id}").WithPayload("x").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        // Through node A: B's report counts the 4 publishes it took (at least: the baseline report may predate the
        // previous test's last publishes); each node holds this test's connections.
        var seen = await Eventually.Get(
            () => NodesAsync(nodes.A),
            list => list.Count == 2 && Of(list, nodes.B)["publishIn"]!.GetValue<long>() >= publishedBefore + 4
                    && Of(list, nodes.A)["connections"]!.GetValue<int>() >= 3 && Of(list, nodes.B)["connections"]!.GetValue<int>() >= 1,
            "the nodes' next reports");
        Assert.All(seen, n => Assert.True(n!["reportedAt"]!.GetValue<DateTimeOffset>() >= n["startedAt"]!.GetValue<DateTimeOffset>()));

        // Both nodes list the same nodes.
        Assert.Equal(
            seen.Select(n => n!["nodeId"]!.GetValue<string>()).Order(),
            (await NodesAsync(nodes.B)).Select(n => n!["nodeId"]!.GetValue<string>()).Order());

        foreach (var client in onA)
        {
            client.Dispose();
        }
    }
}
