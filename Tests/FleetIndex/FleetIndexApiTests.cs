using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.FleetIndex;

/// <summary>
/// Fleet indexing over HTTP on a running node: AWS's request and response shapes, read-your-writes (a search after an
/// acknowledged registry or shadow change sees it), connectivity, aggregations, errors, and dynamic thing groups whose
/// members follow the shadow. Each test names its things with a fresh prefix and queries within it.
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class FleetIndexApiTests(NodeFixture node)
{
    internal static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    internal static StringContent Json(JsonNode json) => Json(json.ToJsonString());

    internal static async Task<JsonNode> SearchAsync(HttpClient http, string query, int? maxResults = null, string? nextToken = null) =>
        await ApiAssert.OkAsync(await http.PostAsync("/api/indices/search", Json(new JsonObject
        {
            ["indexName"] = "AWS_Things",
            ["queryString"] = query,
            ["maxResults"] = maxResults,
            ["nextToken"] = nextToken,
        })));

    internal static string[] Names(JsonNode result) => [.. result["things"]!.AsArray().Select(t => (string)t!["thingName"]!)];

    private async Task CreateThingAsync(string name, string attributes = "{}", string? type = null) =>
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{name}", Json($$"""{"attributePayload":{"attributes":{{attributes}}}{{(type is null ? "" : $",\"thingTypeName\":\"{type}\"")}}}""")));

    private async Task UpdateShadowAsync(string thing, string state) =>
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/things/{thing}/shadow", Json($$"""{"state":{{state}}}""")));

    [Fact]
    public async Task ASearchAfterAnAcknowledgedChange_SeesIt()
    {
        var prefix = Ids.NewId("ryw");
        var thing = prefix + "-1";
        await CreateThingAsync(thing, """{"site":"north"}""");
        Assert.Equal([thing], Names(await SearchAsync(node.Http, $"thingName:{prefix}* AND attributes.site:north")));

        // Each write is answered only once the index has it: no waiting, no retries.
        for (var i = 1; i <= 20; i++)
        {
            await UpdateShadowAsync(thing, $$$"""{"reported":{"firmware":"1.{{{i}}}","battery":{{{100 - i}}}}}""");
            Assert.Equal([thing], Names(await SearchAsync(node.Http, $"thingName:{prefix}* AND shadow.reported.firmware:\"1.{i}\" AND shadow.reported.battery:{100 - i}")));
        }

        await ApiAssert.OkAsync(await node.Http.PatchAsync($"/api/things/{thing}", Json("""{"attributePayload":{"attributes":{"site":"south"},"merge":true}}""")));
        Assert.Empty(Names(await SearchAsync(node.Http, $"thingName:{prefix}* AND attributes.site:north")));
        Assert.Equal([thing], Names(await SearchAsync(node.Http, $"thingName:{prefix}* AND attributes.site:south")));

        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/thing-groups/{prefix}-g", Json("{}")));
        await ApiAssert.OkAsync(await node.Http.PutAsync("/api/thing-groups/addThingToThingGroup", Json($$"""{"thingGroupName":"{{prefix}}-g","thingName":"{{thing}}"}""")));
        Assert.Equal([thing], Names(await SearchAsync(node.Http, $"thingGroupNames:{prefix}-g")));

        // Deleting the group takes it out of its former members' entries.
        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/thing-groups/{prefix}-g"));
        Assert.Empty(Names(await SearchAsync(node.Http, $"thingGroupNames:{prefix}-g")));

        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/things/{thing}"));
        Assert.Empty(Names(await SearchAsync(node.Http, $"thingName:{prefix}*")));
    }

    [Fact]
    public async Task SearchIndex_AnswersInAwsShape_WithTheShadowAsAJsonString_AndConnectivity()
    {
        var prefix = Ids.NewId("shape");
        var thing = prefix + "-dev";
        await CreateThingAsync(thing, """{"model":"LX-9"}""");
        await UpdateShadowAsync(thing, """{"desired":{"led":"on"},"reported":{"led":"off","temp":21.5}}""");
        using (var device = await node.ConnectAsync(thing))
        {
            var connected = await Eventually.Get(
                () => SearchAsync(node.Http, $"thingName:{thing} AND connectivity.connected:true"),
                r => Names(r).Length == 1,
                "the index shows the device connected");
            var doc = connected["things"]![0]!;
            Assert.Equal("LX-9", (string?)doc["attributes"]!["model"]);
            Assert.NotNull((string?)doc["thingId"]);
            Assert.Empty(doc["thingGroupNames"]!.AsArray());
            var shadow = JsonNode.Parse((string)doc["shadow"]!)!;   // a string holding JSON, as AWS returns it
            Assert.Equal("off", (string?)shadow["reported"]!["led"]);
            Assert.Equal("on", (string?)shadow["delta"]!["led"]);
            Assert.True((bool)shadow["hasDelta"]!);
            Assert.Equal(1, (long)shadow["version"]!);
            Assert.True((bool)doc["connectivity"]!["connected"]!);
            Assert.True((long)doc["connectivity"]!["timestamp"]! > 1_600_000_000_000);
            await device.DisconnectAsync(new MQTTnet.MqttClientDisconnectOptions());
        }

        var gone = await Eventually.Get(
            () => SearchAsync(node.Http, $"thingName:{thing} AND connectivity.connected:false"),
            r => Names(r).Length == 1,
            "the index shows the device disconnected");
        Assert.Equal("CLIENT_INITIATED_DISCONNECT", (string?)gone["things"]![0]!["connectivity"]!["disconnectReason"]);
        Assert.Empty(gone["thingGroups"]!.AsArray());
    }

    [Fact]
    public async Task AConnectingDevice_IsIndexedOnlyOnceItIsARegisteredThing()
    {
        // Connects reach the index from the connection directory, a batch per partition, without activating the
        // things: a device that is not registered has no entry and gets none. Two client ids of one partition, so one
        // batch carries both.
        var prefix = Ids.NewId("reg");
        var registered = prefix + "-r";
        var unregistered = Enumerable.Range(0, 10_000).Select(i => $"{prefix}-u{i}")
            .First(id => Grains.Abstractions.Sessions.ConnectionDirectory.PartitionOf(id) == Grains.Abstractions.Sessions.ConnectionDirectory.PartitionOf(registered));
        await CreateThingAsync(registered);

        using var both = new CompositeDisposable(await node.ConnectAsync(unregistered), await node.ConnectAsync(registered));
        await Eventually.Get(
            () => SearchAsync(node.Http, $"thingName:{registered} AND connectivity.connected:true"),
            r => Names(r).Length == 1,
            "the registered device indexed as connected");
        Assert.Empty(Names(await SearchAsync(node.Http, $"thingName:{unregistered}")));
        Assert.Equal([registered], Names(await SearchAsync(node.Http, $"thingName:{prefix}*")));
    }

    [Fact]
    public async Task ADynamicGroupOnConnectivity_FollowsItsDevicesConnectsAndDisconnects()
    {
        var prefix = Ids.NewId("online");
        var (group, thing) = (prefix + "-g", prefix + "-dev");
        await CreateThingAsync(thing);
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/dynamic-thing-groups/{group}", Json($$"""{"queryString":"thingName:{{prefix}}* AND connectivity.connected:true"}""")));
        Assert.Empty(await MembersAsync(group));

        var device = await node.ConnectAsync(thing);
        await Eventually.True(async () => (await MembersAsync(group)).SequenceEqual([thing]), "the device a member while connected");

        await device.DisconnectAsync(new MQTTnet.MqttClientDisconnectOptions());
        await Eventually.True(async () => (await MembersAsync(group)).Length == 0, "the device out of the group once disconnected");
        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/dynamic-thing-groups/{group}"));
    }

    private sealed class CompositeDisposable(params IDisposable[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items)
            {
                item.Dispose();
            }
        }
    }

    [Fact]
    public async Task SearchIndex_PagesWithNextToken_UpTo500APage()
    {
        var prefix = Ids.NewId("page");
        await Task.WhenAll(Enumerable.Range(0, 7).Select(i => CreateThingAsync($"{prefix}-{i}")));
        var seen = new List<string>();
        string? token = null;
        do
        {
            var page = await SearchAsync(node.Http, $"thingName:{prefix}*", maxResults: 3, nextToken: token);
            seen.AddRange(Names(page));
            token = (string?)page["nextToken"];
        }
        while (token is not null);

        Assert.Equal(Enumerable.Range(0, 7).Select(i => $"{prefix}-{i}"), seen);
        await ApiAssert.ProblemAsync(await node.Http.PostAsync("/api/indices/search", Json("""{"queryString":"*","maxResults":501}""")), HttpStatusCode.BadRequest, "InvalidRequestException");
    }

    [Theory]
    [InlineData("thingName:*lamp", "InvalidQueryException", "position 11")]
    [InlineData("thingName:(a OR b", "InvalidQueryException", "Expected ')'")]
    [InlineData("a:1 b:2 c:3 d:4 e:5 f:6 g:7 h:8", "InvalidQueryException", "more than 7 terms")]
    [InlineData("noSuchField:1", "InvalidQueryException", "has no field noSuchField")]
    [InlineData("thingName:x');DROP TABLE iot_fleet_index;--", "InvalidQueryException", "Unbalanced ')'")]
    [InlineData("", "InvalidQueryException", "empty")]
    public async Task BadQueries_Get400_WithAwsErrorName_AndWhere(string query, string code, string message)
    {
        var response = await node.Http.PostAsync("/api/indices/search", Json(new JsonObject { ["queryString"] = query }));
        var text = await response.Content.ReadAsStringAsync();
        await ApiAssert.ProblemAsync(response, HttpStatusCode.BadRequest, code);
        Assert.Contains(message, text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task OverlongQuery_AndUnknownIndex_AreRefused()
    {
        await ApiAssert.ProblemAsync(
            await node.Http.PostAsync("/api/indices/search", Json(new JsonObject { ["queryString"] = "thingName:" + new string('a', 1000) })), HttpStatusCode.BadRequest, "InvalidQueryException");
        await ApiAssert.ProblemAsync(
            await node.Http.PostAsync("/api/indices/search", Json("""{"indexName":"AWS_ThingGroups","queryString":"*"}""")), HttpStatusCode.NotFound, "ResourceNotFoundException");
        await ApiAssert.ProblemAsync(
            await node.Http.PostAsync("/api/indices/statistics", Json("""{"queryString":"*","aggregationField":"nope"}""")), HttpStatusCode.BadRequest, "InvalidAggregationException");
    }

    [Fact]
    public async Task Aggregations_OverTheMatchingThings()
    {
        var prefix = Ids.NewId("agg");
        double[] temps = [10, 20, 30, 40];
        for (var i = 0; i < temps.Length; i++)
        {
            await CreateThingAsync($"{prefix}-{i}", $$"""{"model":"{{(i % 2 == 0 ? "a" : "b")}}"}""");
            await UpdateShadowAsync($"{prefix}-{i}", $$$"""{"reported":{"temp":{{{temps[i]}}}}}""");
        }

        var query = $"thingName:{prefix}*";
        var stats = (await ApiAssert.OkAsync(await node.Http.PostAsync("/api/indices/statistics", Json(new JsonObject
        {
            ["queryString"] = query,
            ["aggregationField"] = "shadow.reported.temp",
        }))))["statistics"]!;
        Assert.Equal(4, (long)stats["count"]!);
        Assert.Equal(25, (double)stats["average"]!);
        Assert.Equal(100, (double)stats["sum"]!);
        Assert.Equal(10, (double)stats["minimum"]!);
        Assert.Equal(40, (double)stats["maximum"]!);
        Assert.Equal(125, (double)stats["variance"]!, 6);

        var cardinality = await ApiAssert.OkAsync(await node.Http.PostAsync("/api/indices/cardinality", Json(new JsonObject { ["queryString"] = query, ["aggregationField"] = "attributes.model" })));
        Assert.Equal(2, (long)cardinality["cardinality"]!);

        var percentiles = await ApiAssert.OkAsync(await node.Http.PostAsync("/api/indices/percentiles", Json(new JsonObject
        {
            ["queryString"] = query,
            ["aggregationField"] = "shadow.reported.temp",
            ["percents"] = new JsonArray(50, 100),
        })));
        Assert.Equal([25.0, 40.0], percentiles["percentiles"]!.AsArray().Select(p => (double)p!["value"]!));

        var buckets = await ApiAssert.OkAsync(await node.Http.PostAsync("/api/indices/buckets", Json(new JsonObject
        {
            ["queryString"] = query,
            ["aggregationField"] = "attributes.model",
            ["bucketsAggregationType"] = new JsonObject { ["termsAggregation"] = new JsonObject { ["maxBuckets"] = 10 } },
        })));
        Assert.Equal(4, (long)buckets["totalCount"]!);
        Assert.Equal(["a:2", "b:2"], buckets["buckets"]!.AsArray().Select(b => $"{b!["keyValue"]}:{b["count"]}"));

        // The default statistic is registry.version.
        var versions = (await ApiAssert.OkAsync(await node.Http.PostAsync("/api/indices/statistics", Json(new JsonObject { ["queryString"] = query }))))["statistics"]!;
        Assert.Equal(1, (double)versions["average"]!);
    }

    [Fact]
    public async Task ADynamicGroup_FollowsTheShadow_AndStaticChangesToItAreRefused()
    {
        var prefix = Ids.NewId("dyn");
        var group = prefix + "-old-firmware";
        await CreateThingAsync(prefix + "-a");
        await CreateThingAsync(prefix + "-b");
        await UpdateShadowAsync(prefix + "-a", """{"reported":{"firmware":"1.0"}}""");
        await UpdateShadowAsync(prefix + "-b", """{"reported":{"firmware":"2.0"}}""");

        var created = await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/dynamic-thing-groups/{group}", Json($$"""{"queryString":"thingName:{{prefix}}* AND shadow.reported.firmware:1.0"}""")));
        Assert.Equal("AWS_Things", (string?)created["indexName"]);
        Assert.Equal([prefix + "-a"], await MembersAsync(group));   // the things matching at creation are members when it answers

        // A device updates its firmware: it leaves; another downgrades: it joins. Each as the update is acknowledged.
        await UpdateShadowAsync(prefix + "-a", """{"reported":{"firmware":"2.0"}}""");
        Assert.Empty(await MembersAsync(group));
        await UpdateShadowAsync(prefix + "-b", """{"reported":{"firmware":"1.0"}}""");
        Assert.Equal([prefix + "-b"], await MembersAsync(group));
        Assert.Equal([prefix + "-b"], Names(await SearchAsync(node.Http, $"thingGroupNames:{group}")));
        var groups = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{prefix}-b/thing-groups"));
        Assert.Equal([group], groups["thingGroups"]!.AsArray().Select(g => (string)g!["groupName"]!));

        var described = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/thing-groups/{group}"));
        Assert.Equal($"thingName:{prefix}* AND shadow.reported.firmware:1.0", (string?)described["queryString"]);
        Assert.Equal("ACTIVE", (string?)described["status"]);

        await ApiAssert.ProblemAsync(
            await node.Http.PutAsync("/api/thing-groups/addThingToThingGroup", Json($$"""{"thingGroupName":"{{group}}","thingName":"{{prefix}}-a"}""")), HttpStatusCode.BadRequest, "InvalidRequestException");

        // A new query: the members follow it.
        await ApiAssert.OkAsync(await node.Http.PatchAsync($"/api/dynamic-thing-groups/{group}", Json($$"""{"queryString":"thingName:{{prefix}}* AND shadow.reported.firmware:2.0"}""")));
        Assert.Equal([prefix + "-a"], await MembersAsync(group));

        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/dynamic-thing-groups/{group}"));
        Assert.Empty(Names(await SearchAsync(node.Http, $"thingGroupNames:{group}")));
        await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/thing-groups/{group}"), HttpStatusCode.NotFound, "ResourceNotFoundException");
    }

    [Fact]
    public async Task APolicyOnADynamicGroup_AppliesToItsMembers_WhileTheyMatch()
    {
        var prefix = Ids.NewId("dynpol");
        var (group, thing, policy) = (prefix + "-g", prefix + "-t", prefix + "-p");
        await CreateThingAsync(thing);
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policies/{policy}", Json(
            """{"policyDocument":{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*"}]}}""")));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/dynamic-thing-groups/{group}", Json($$"""{"queryString":"thingName:{{prefix}}* AND shadow.reported.zone:lab"}""")));
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/target-policies/{policy}", Json(new JsonObject { ["target"] = $"arn:aws:iot:local:000000000000:thinggroup/{group}" })));
        Assert.Empty(await EffectiveAsync(thing));

        await UpdateShadowAsync(thing, """{"reported":{"zone":"lab"}}""");
        Assert.Equal([policy], await EffectiveAsync(thing));

        await UpdateShadowAsync(thing, """{"reported":{"zone":"office"}}""");
        Assert.Empty(await EffectiveAsync(thing));
    }

    private async Task<string[]> EffectiveAsync(string thing) =>
        [.. (await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/effective-policies?thingName={thing}", Json("{}"))))["effectivePolicies"]!.AsArray().Select(e => (string)e!["policyName"]!)];

    [Theory]
    [InlineData("""{"queryString":"thingName:*x"}""", "InvalidQueryException")]
    [InlineData("""{"queryString":"nope:1"}""", "InvalidQueryException")]
    [InlineData("""{}""", "InvalidRequestException")]
    public async Task ADynamicGroupWithABadQuery_IsNotCreated(string body, string code)
    {
        var group = Ids.NewId("dynbad");
        await ApiAssert.ProblemAsync(await node.Http.PostAsync($"/api/dynamic-thing-groups/{group}", Json(body)), HttpStatusCode.BadRequest, code);
        await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/thing-groups/{group}"), HttpStatusCode.NotFound, "ResourceNotFoundException");
    }

    [Fact]
    public async Task AContinuousJobOnADynamicGroup_ReachesAThingThatJoinsIt()
    {
        var prefix = Ids.NewId("dynjob");
        var group = prefix + "-g";
        var thing = prefix + "-t";
        await CreateThingAsync(thing);
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/dynamic-thing-groups/{group}", Json($$"""{"queryString":"thingName:{{prefix}}* AND shadow.reported.needsUpdate:true"}""")));
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{prefix}-job", Json(new JsonObject
        {
            ["targets"] = new JsonArray($"arn:aws:iot:us-east-1:123456789012:thinggroup/{group}"),
            ["document"] = """{"operation":"update"}""",
            ["targetSelection"] = "CONTINUOUS",
        })));

        await UpdateShadowAsync(thing, """{"reported":{"needsUpdate":true}}""");
        var pending = await Eventually.Get(
            async () => await ApiAssert.OkAsync(await node.Http.GetAsync($"/things/{thing}/jobs")),
            r => r["queuedJobs"]!.AsArray().Count == 1,
            "the job reached the thing that joined the group");
        Assert.Equal($"{prefix}-job", (string?)pending["queuedJobs"]![0]!["jobId"]);
    }

    [Fact]
    public async Task IndexingConfiguration_AndDescribeIndex_InAwsShape()
    {
        var config = await ApiAssert.OkAsync(await node.Http.GetAsync("/api/indexing/config"));
        Assert.Equal("REGISTRY_AND_SHADOW", (string?)config["thingIndexingConfiguration"]!["thingIndexingMode"]);
        Assert.Equal("STATUS", (string?)config["thingIndexingConfiguration"]!["thingConnectivityIndexingMode"]);
        Assert.Equal("OFF", (string?)config["thingGroupIndexingConfiguration"]!["thingGroupIndexingMode"]);

        var index = await ApiAssert.OkAsync(await node.Http.GetAsync("/api/indices/AWS_Things"));
        Assert.Equal("AWS_Things", (string?)index["indexName"]);
        Assert.Equal("REGISTRY_AND_SHADOW_AND_CONNECTIVITY_STATUS", (string?)index["schema"]);
        var list = await ApiAssert.OkAsync(await node.Http.GetAsync("/api/indices"));
        Assert.Equal(["AWS_Things"], list["indexNames"]!.AsArray().Select(n => (string)n!));

        await ApiAssert.ProblemAsync(
            await node.Http.PostAsync("/api/indexing/config", Json("""{"thingIndexingConfiguration":{"thingIndexingMode":"EVERYTHING"}}""")), HttpStatusCode.BadRequest, "InvalidRequestException");
    }

    private async Task<string[]> MembersAsync(string group) =>
        [.. (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/thing-groups/{group}/things")))["things"]!.AsArray().Select(t => (string)t!)];
}
