using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Registry;

/// <summary>The registry on two nodes: what one node's API writes, the other's reads.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ClusterRegistryTests(TwoNodeFixture nodes)
{
    [Fact]
    public async Task ThingsAndGroups_WrittenThroughA_AreReadThroughB()
    {
        var (thing, group) = (Ids.NewId("cthing"), Ids.NewId("cgroup"));
        Assert.True((await nodes.A.Http.PostAsync($"/api/things/{thing}", new StringContent("{}", Encoding.UTF8, "application/json"))).IsSuccessStatusCode);
        Assert.True((await nodes.B.Http.PostAsync($"/api/thing-groups/{group}", new StringContent("{}", Encoding.UTF8, "application/json"))).IsSuccessStatusCode);
        Assert.True((await nodes.A.Http.PutAsync("/api/thing-groups/addThingToThingGroup", new StringContent($$"""{"thingGroupName":"{{group}}","thingName":"{{thing}}"}""", Encoding.UTF8, "application/json"))).IsSuccessStatusCode);

        var described = JsonNode.Parse(await nodes.B.Http.GetStringAsync($"/api/things/{thing}"))!;
        var members = JsonNode.Parse(await nodes.B.Http.GetStringAsync($"/api/thing-groups/{group}/things"))!;

        Assert.Equal(thing, (string)described["thingName"]!);
        Assert.Equal([thing], members["things"]!.AsArray().Select(t => (string)t!));
    }
}
