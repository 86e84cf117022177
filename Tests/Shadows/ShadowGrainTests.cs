using System.Text;
using System.Text.Json.Nodes;
using Orleans.Core.Internal;
using OrleansIot.Grains.Abstractions.Shadows;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Shadows;

/// <summary>Shadows held by the thing grain, on the two-silo TestingHost cluster (what a backend service gets through an Orleans client).</summary>
[Collection(ClusterCollection.Name)]
public sealed class ShadowGrainTests(ClusterFixture fixture)
{
    private static ShadowRequest Api(string payload, string? shadow = null) => new(shadow, Encoding.UTF8.GetBytes(payload), ShadowChannel.Api);

    private static ShadowRequest Mqtt(string payload, string? shadow = null) => new(shadow, Encoding.UTF8.GetBytes(payload), ShadowChannel.Mqtt);

    private static JsonNode Json(ShadowResponse response) => JsonNode.Parse(response.Document)!;

    private (string Name, IThingGrain Thing) NewThing()
    {
        var name = Ids.NewId("shadow");
        return (name, fixture.Grains.GetGrain<IThingGrain>(name));
    }

    [Fact]
    public async Task Get_BeforeTheFirstUpdate_Is404()
    {
        var (name, thing) = NewThing();

        var response = await thing.GetShadow(Api(""));

        Assert.Equal(404, response.Code);
        Assert.Equal($"No shadow exists with name: '{name}'", (string)Json(response)["message"]!);
    }

    [Fact]
    public async Task Update_ThenGet_ReturnsTheMergedDocument_WithDeltaAndVersion()
    {
        var (_, thing) = NewThing();

        var first = await thing.UpdateShadow(Api("""{"state":{"desired":{"color":"RED","power":true}}}"""));
        var second = await thing.UpdateShadow(Api("""{"state":{"reported":{"color":"GREEN","power":true}}}"""));
        var get = await thing.GetShadow(Api("""{"clientToken":"g1"}"""));

        Assert.Equal(200, first.Code);
        Assert.Equal(1, (long)Json(first)["version"]!);
        Assert.Equal(2, (long)Json(second)["version"]!);
        var doc = Json(get);
        Assert.Equal(2, (long)doc["version"]!);
        Assert.Equal("RED", (string)doc["state"]!["delta"]!["color"]!);
        Assert.Null(doc["state"]!["delta"]!["power"]);
        Assert.Equal("g1", (string)doc["clientToken"]!);
    }

    [Fact]
    public async Task Update_WithStaleVersion_IsRejectedWith409_AndChangesNothing()
    {
        var (_, thing) = NewThing();
        await thing.UpdateShadow(Api("""{"state":{"desired":{"a":1}}}"""));
        await thing.UpdateShadow(Api("""{"state":{"desired":{"a":2}}}"""));

        var stale = await thing.UpdateShadow(Api("""{"state":{"desired":{"a":3}},"version":1,"clientToken":"c"}"""));
        var current = await thing.UpdateShadow(Api("""{"state":{"desired":{"a":4}},"version":2}"""));

        Assert.Equal(409, stale.Code);
        Assert.Equal("Version conflict", (string)Json(stale)["message"]!);
        Assert.Equal("c", (string)Json(stale)["clientToken"]!);
        Assert.Equal(200, current.Code);
        var doc = Json(await thing.GetShadow(Api("")));
        Assert.Equal(4, (int)doc["state"]!["desired"]!["a"]!);
        Assert.Equal(3, (long)doc["version"]!);
    }

    [Fact]
    public async Task Update_RetriedWithTheSameClientToken_ReturnsTheFirstOutcome_AndDoesNotBumpTheVersion_EvenAfterDeactivation()
    {
        var (_, thing) = NewThing();
        const string Request = """{"state":{"reported":{"temp":21}},"clientToken":"retry-1"}""";
        var first = await thing.UpdateShadow(Api(Request));
        await thing.UpdateShadow(Api("""{"state":{"reported":{"temp":22}},"clientToken":"other"}"""));

        var retry = await thing.UpdateShadow(Api(Request));
        await thing.Cast<IGrainManagementExtension>().DeactivateOnIdle();
        var retryAfterDeactivation = await Eventually.Get(() => thing.UpdateShadow(Api(Request)), r => r.IsAccepted, "the retry answered after reactivation");

        Assert.Equal(first.DocumentText, retry.DocumentText);
        Assert.Equal(first.DocumentText, retryAfterDeactivation.DocumentText);
        var doc = Json(await thing.GetShadow(Api("")));
        Assert.Equal(2, (long)doc["version"]!);
        Assert.Equal(22, (int)doc["state"]!["reported"]!["temp"]!);
    }

    [Fact]
    public async Task SameClientToken_WithADifferentRequest_IsANewUpdate()
    {
        // Some devices send a constant token; only a repeat of the same request is a retry.
        var (_, thing) = NewThing();

        await thing.UpdateShadow(Api("""{"state":{"reported":{"n":1}},"clientToken":"fixed"}"""));
        var second = await thing.UpdateShadow(Api("""{"state":{"reported":{"n":2}},"clientToken":"fixed"}"""));

        Assert.Equal(2, (long)Json(second)["version"]!);
    }

    [Fact]
    public async Task Delete_RemovesTheDocument_AndTheVersionSequenceContinues()
    {
        var (_, thing) = NewThing();
        await thing.UpdateShadow(Api("""{"state":{"reported":{"a":1}}}"""));
        await thing.UpdateShadow(Api("""{"state":{"reported":{"a":2}}}"""));

        var deleted = await thing.DeleteShadow(Api("""{"clientToken":"d"}"""));
        var get = await thing.GetShadow(Api(""));
        var deleteAgain = await thing.DeleteShadow(Api(""));
        var recreated = await thing.UpdateShadow(Api("""{"state":{"reported":{"b":1}}}"""));

        Assert.Equal(200, deleted.Code);
        Assert.Equal(2, (long)Json(deleted)["version"]!);
        Assert.Equal("d", (string)Json(deleted)["clientToken"]!);
        Assert.Equal(404, get.Code);
        Assert.Equal(404, deleteAgain.Code);
        Assert.Equal(3, (long)Json(recreated)["version"]!);
        var doc = Json(await thing.GetShadow(Api("")));
        Assert.Null(doc["state"]!["reported"]!["a"]);
    }

    [Fact]
    public async Task NamedShadows_AreIndependentOfTheClassicShadow_AndListedInPages()
    {
        var (_, thing) = NewThing();
        await thing.UpdateShadow(Api("""{"state":{"reported":{"x":1}}}"""));
        foreach (var shadow in new[] { "gamma", "alpha", "beta", "delta" })
        {
            await thing.UpdateShadow(Api("{\"state\":{\"reported\":{\"name\":\"" + shadow + "\"}}}", shadow));
        }

        await thing.DeleteShadow(Api("", "delta"));
        var page1 = await thing.ListNamedShadows(null, 2);
        var page2 = await thing.ListNamedShadows(page1.NextToken, 2);
        var alpha = Json(await thing.GetShadow(Api("", "alpha")));
        var missing = await thing.GetShadow(Api("", "nope"));

        Assert.Equal(["alpha", "beta"], page1.Results);
        Assert.Equal(["gamma"], page2.Results);
        Assert.Null(page2.NextToken);
        Assert.Equal("alpha", (string)alpha["state"]!["reported"]!["name"]!);
        Assert.Equal(1, (long)alpha["version"]!);
        Assert.Equal(404, missing.Code);
        Assert.Equal("No shadow exists with name: 'nope'", (string)Json(missing)["message"]!);
    }

    [Fact]
    public async Task Update_PublishesAcceptedDocumentsAndDelta_OnlyAfterItIsStored()
    {
        var (name, thing) = NewThing();
        var prefix = $"$aws/things/{name}/shadow/name/cfg";

        await thing.UpdateShadow(Api("""{"state":{"desired":{"mode":"eco"}},"clientToken":"t"}""", "cfg"));
        await thing.UpdateShadow(Api("""{"state":{"reported":{"other":1}}}""", "cfg"));

        var broker = RecordingBroker.Shared;
        Assert.Equal(2, broker.On($"{prefix}/update/accepted").Count);
        Assert.Equal(2, broker.On($"{prefix}/update/documents").Count);
        var delta = Assert.Single(broker.On($"{prefix}/update/delta"));   // the report of "other" does not repeat it
        Assert.Equal("eco", (string)JsonNode.Parse(delta)!["state"]!["mode"]!);
        Assert.Equal("t", (string)JsonNode.Parse(delta)!["clientToken"]!);
        // API callers get their answer returned; nothing on /rejected or /get/accepted for them.
        await thing.GetShadow(Api("", "cfg"));
        await thing.UpdateShadow(Api("{bad", "cfg"));
        Assert.Empty(broker.On($"{prefix}/get/accepted"));
        Assert.Empty(broker.On($"{prefix}/update/rejected"));
    }

    [Fact]
    public async Task MqttRequests_AreAnsweredOnTheResponseTopics()
    {
        var (name, thing) = NewThing();
        var prefix = $"$aws/things/{name}/shadow";

        await thing.GetShadow(Mqtt("""{"clientToken":"a"}"""));
        await thing.UpdateShadow(Mqtt("""{"state":{"reported":{"v":1}}}"""));
        await thing.GetShadow(Mqtt(""));
        await thing.UpdateShadow(Mqtt("""{"state":{"bogus":{}}}"""));
        await thing.DeleteShadow(Mqtt(""));

        var broker = RecordingBroker.Shared;
        var rejectedGet = JsonNode.Parse(Assert.Single(broker.On($"{prefix}/get/rejected")))!;
        Assert.Equal(404, (int)rejectedGet["code"]!);
        Assert.Equal("a", (string)rejectedGet["clientToken"]!);
        Assert.Single(broker.On($"{prefix}/get/accepted"));
        Assert.Equal("State contains an invalid node", (string)JsonNode.Parse(Assert.Single(broker.On($"{prefix}/update/rejected")))!["message"]!);
        Assert.Equal(1, (long)JsonNode.Parse(Assert.Single(broker.On($"{prefix}/delete/accepted")))!["version"]!);
    }

    [Fact]
    public async Task InvalidNames_AreRejectedWith400()
    {
        var bad = fixture.Grains.GetGrain<IThingGrain>("has space");
        var (_, thing) = NewThing();

        Assert.Equal(400, (await bad.UpdateShadow(Api("""{"state":{}}"""))).Code);
        Assert.Equal(400, (await thing.UpdateShadow(Api("""{"state":{}}""", "bad/name"))).Code);
        Assert.Equal(400, (await thing.UpdateShadow(Api("""{"state":{}}""", new string('s', 65)))).Code);
    }

    [Fact]
    public async Task WaitForShadowChange_ReturnsWhenTheDeviceReports()
    {
        var (_, thing) = NewThing();
        var set = Json(await thing.UpdateShadow(Api("""{"state":{"desired":{"on":true}}}""")));
        var version = (long)set["version"]!;

        var waiting = thing.WaitForShadowChange(null, version, TimeSpan.FromSeconds(20));
        Assert.False(waiting.IsCompleted);
        await thing.UpdateShadow(Api("""{"state":{"reported":{"on":true}}}"""));
        var changed = Json(await waiting);

        Assert.Equal(version + 1, (long)changed["version"]!);
        Assert.True((bool)changed["state"]!["reported"]!["on"]!);
        Assert.Null(changed["state"]!["delta"]);
        var timedOut = await thing.WaitForShadowChange(null, version + 1, TimeSpan.FromMilliseconds(100));
        Assert.Equal(408, timedOut.Code);
    }
}

/// <summary>The per-thing request rate, on a clock that moves only when the test says so.</summary>
[Collection(FakeClockClusterCollection.Name)]
public sealed class ShadowRateTests(FakeClockClusterFixture fixture)
{
    private static ShadowRequest Api(string payload) => new(null, Encoding.UTF8.GetBytes(payload), ShadowChannel.Api);

    [Fact]
    public async Task Requests_BeyondTheRatePerThing_AreRejectedWith429_UntilTheBucketRefills()
    {
        var thing = fixture.Grains.GetGrain<IThingGrain>(Ids.NewId("rate"));

        var responses = new List<ShadowResponse>();
        for (var i = 0; i < 30; i++)
        {
            responses.Add(await thing.UpdateShadow(Api("{\"state\":{\"reported\":{\"i\":" + i + "}}}")));
        }

        // AWS: 20 requests per second per thing; the clock stands still, so exactly the burst is accepted.
        Assert.Equal(20, responses.Count(r => r.IsAccepted));
        Assert.All(responses.Skip(20), r => Assert.Equal(429, r.Code));
        Assert.Equal("Too Many Requests", (string)JsonNode.Parse(responses[^1].Document)!["message"]!);
        Assert.Equal(429, (await thing.GetShadow(Api(""))).Code);

        fixture.Clock.Advance(TimeSpan.FromMilliseconds(100));   // two requests' worth

        Assert.Equal(20, (long)JsonNode.Parse((await thing.GetShadow(Api(""))).Document)!["version"]!);
        Assert.True((await thing.GetShadow(Api(""))).IsAccepted);
        Assert.Equal(429, (await thing.GetShadow(Api(""))).Code);
    }
}
