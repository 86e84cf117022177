using System.Net;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.FleetIndex;

/// <summary>Two nodes of their own: these tests change the indexing configuration, which is the cluster's.</summary>
public sealed class FleetIndexTwoNodeFixture : TwoNodeFixture
{
    protected override IEnumerable<string> NodeSettings(string node) => ["Iot:FleetIndex:SettingsRefresh=00:00:00.500"];
}

/// <summary>
/// The fleet index across two nodes: changes made through either node are searchable through the other, dynamic
/// groups made on one node follow things living on the other, and a configuration change reaches every node and
/// rebuilds the index with it.
/// </summary>
public sealed class ClusterFleetIndexTests(FleetIndexTwoNodeFixture nodes) : IClassFixture<FleetIndexTwoNodeFixture>
{
    private static async Task CreateAsync(NodeFixture node, string thing, string reported)
    {
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", FleetIndexApiTests.Json("{}")));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/things/{thing}/shadow", FleetIndexApiTests.Json("{\"state\":{\"reported\":" + reported + "}}")));
    }

    [Fact]
    public async Task ChangesThroughEitherNode_AreSearchableThroughTheOther_AndDynamicGroupsFollowThem()
    {
        var prefix = Ids.NewId("cfleet");
        var things = Enumerable.Range(0, 6).Select(i => $"{prefix}-{i}").ToList();
        for (var i = 0; i < things.Count; i++)
        {
            await CreateAsync(i % 2 == 0 ? nodes.A : nodes.B, things[i], $$"""{"mode":"{{(i < 3 ? "eco" : "boost")}}"}""");
        }

        Assert.Equal(things.Take(3), FleetIndexApiTests.Names(await FleetIndexApiTests.SearchAsync(nodes.A.Http, $"thingName:{prefix}* AND shadow.reported.mode:eco")));
        Assert.Equal(things.Take(3), FleetIndexApiTests.Names(await FleetIndexApiTests.SearchAsync(nodes.B.Http, $"thingName:{prefix}* AND shadow.reported.mode:eco")));

        var group = prefix + "-boost";
        await ApiAssert.OkAsync(await nodes.B.Http.PostAsync($"/api/dynamic-thing-groups/{group}", FleetIndexApiTests.Json($$"""{"queryString":"thingName:{{prefix}}* AND shadow.reported.mode:boost"}""")));
        Assert.Equal(things.Skip(3), await MembersAsync(nodes.A, group));

        // Every thing switches mode through node A; wherever each lives, the group follows.
        foreach (var (thing, i) in things.Select((t, i) => (t, i)))
        {
            await ApiAssert.OkAsync(await nodes.A.Http.PostAsync($"/things/{thing}/shadow", FleetIndexApiTests.Json(new JsonObject { ["state"] = new JsonObject { ["reported"] = new JsonObject { ["mode"] = i < 3 ? "boost" : "eco" } } })));
        }

        await Eventually.Get(() => MembersAsync(nodes.B, group), m => m.SequenceEqual(things.Take(3)), "the group follows the things on both nodes");
        // A thing's group names reach the index after the group has taken it in (each thing is told, then indexed):
        // a consequence of the shadow update, not the update itself, so it follows shortly, as on AWS.
        await Eventually.Get(
            async () => FleetIndexApiTests.Names(await FleetIndexApiTests.SearchAsync(nodes.B.Http, $"thingGroupNames:{group}")),
            names => names.SequenceEqual(things.Take(3)),
            "the group's members searchable by its name");
        await ApiAssert.OkAsync(await nodes.A.Http.DeleteAsync($"/api/dynamic-thing-groups/{group}"));
    }

    [Fact]
    public async Task AConfigurationChange_ReachesEveryNode_AndRebuildsTheIndexWithIt()
    {
        var prefix = Ids.NewId("cconf");
        var thing = prefix + "-t";
        await CreateAsync(nodes.A, thing, """{"mode":"eco"}""");
        await ApiAssert.OkAsync(await nodes.B.Http.PostAsync($"/things/{thing}/shadow?name=cfg", FleetIndexApiTests.Json("""{"state":{"reported":{"level":3}}}""")));
        try
        {
            // Registry only: shadow fields are refused on both nodes, and the shadow parts leave the index.
            await ApiAssert.OkAsync(await nodes.A.Http.PostAsync("/api/indexing/config", FleetIndexApiTests.Json("""{"thingIndexingConfiguration":{"thingIndexingMode":"REGISTRY"}}""")));
            await Eventually.True(
                async () => (await nodes.B.Http.PostAsync("/api/indices/search", FleetIndexApiTests.Json($$"""{"queryString":"shadow.reported.mode:eco"}"""))).StatusCode == HttpStatusCode.BadRequest,
                "node B refuses shadow fields");
            await WaitActiveAsync();
            var doc = (await FleetIndexApiTests.SearchAsync(nodes.B.Http, $"thingName:{thing}"))["things"]![0]!;
            Assert.Null(doc["shadow"]);

            // Shadows again, with the named shadow cfg.
            await ApiAssert.OkAsync(await nodes.B.Http.PostAsync("/api/indexing/config", FleetIndexApiTests.Json(
                """{"thingIndexingConfiguration":{"thingIndexingMode":"REGISTRY_AND_SHADOW","thingConnectivityIndexingMode":"STATUS","namedShadowIndexingMode":"ON","filter":{"namedShadowNames":["cfg"]}}}""")));
            var config = await ApiAssert.OkAsync(await nodes.A.Http.GetAsync("/api/indexing/config"));
            Assert.Equal(["cfg"], config["thingIndexingConfiguration"]!["filter"]!["namedShadowNames"]!.AsArray().Select(n => (string)n!));
            await Eventually.Get(
                () => FleetIndexApiTests.SearchAsync(nodes.A.Http, $"thingName:{thing} AND shadow.name.cfg.reported.level:3 AND shadow.reported.mode:eco"),
                r => FleetIndexApiTests.Names(r).Length == 1,
                "the rebuild indexed the named shadow");
            await WaitActiveAsync();

            // From now on a named shadow's update is searchable as soon as it is acknowledged.
            await ApiAssert.OkAsync(await nodes.A.Http.PostAsync($"/things/{thing}/shadow?name=cfg", FleetIndexApiTests.Json("""{"state":{"reported":{"level":4}}}""")));
            Assert.Single(FleetIndexApiTests.Names(await FleetIndexApiTests.SearchAsync(nodes.B.Http, $"thingName:{thing} AND shadow.name.cfg.reported.level:4")));
        }
        finally
        {
            await ApiAssert.OkAsync(await nodes.A.Http.PostAsync("/api/indexing/config", FleetIndexApiTests.Json(
                """{"thingIndexingConfiguration":{"thingIndexingMode":"REGISTRY_AND_SHADOW","thingConnectivityIndexingMode":"STATUS","namedShadowIndexingMode":"OFF","filter":{"namedShadowNames":[]}}}""")));
        }
    }

    private async Task WaitActiveAsync() =>
        await Eventually.Get(
            async () => await ApiAssert.OkAsync(await nodes.A.Http.GetAsync("/api/indices/AWS_Things")),
            i => (string?)i["indexStatus"] == "ACTIVE",
            "the rebuild finished");

    private static async Task<string[]> MembersAsync(NodeFixture node, string group) =>
        [.. (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/thing-groups/{group}/things")))["things"]!.AsArray().Select(t => (string)t!)];
}
