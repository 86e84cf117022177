using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Registry;

/// <summary>The registry's control plane end to end on one node: AWS's paths, bodies and field names; errors as problem+json with AWS's names.</summary>
[Collection(NodeCollection.Name)]
public sealed class RegistryApiTests(NodeFixture node)
{
    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonNode> OkAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    private static async Task AssertProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        Assert.Equal(status, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType!.MediaType);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal(code, (string)problem["code"]!);
        Assert.False(string.IsNullOrEmpty((string?)problem["message"]));
    }

    [Fact]
    public async Task Thing_CreateDescribeUpdateListDelete_AsAws()
    {
        var type = Ids.NewId("apitype");
        var thing = Ids.NewId("apithing");
        await OkAsync(await node.Http.PostAsync($"/api/thing-types/{type}", Body("""{"thingTypeProperties":{"thingTypeDescription":"lamps","searchableAttributes":["room"]}}""")));

        var created = await OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Body("{\"thingTypeName\":\"" + type + "\",\"attributePayload\":{\"attributes\":{\"room\":\"kitchen\"}}}")));
        var described = await OkAsync(await node.Http.GetAsync($"/api/things/{thing}"));
        await OkAsync(await node.Http.PatchAsync($"/api/things/{thing}", Body("""{"attributePayload":{"attributes":{"floor":"2"},"merge":true},"expectedVersion":1}""")));
        var stale = await node.Http.PatchAsync($"/api/things/{thing}", Body("""{"attributePayload":{"attributes":{"floor":"3"},"merge":true},"expectedVersion":1}"""));
        var listed = await OkAsync(await node.Http.GetAsync($"/api/things?thingTypeName={type}&attributeName=floor&attributeValue=2"));
        var typeDoc = await OkAsync(await node.Http.GetAsync($"/api/thing-types/{type}"));
        await OkAsync(await node.Http.DeleteAsync($"/api/things/{thing}?expectedVersion=2"));
        var gone = await node.Http.GetAsync($"/api/things/{thing}");

        Assert.Equal(thing, (string)created["thingName"]!);
        Assert.Equal($"arn:aws:iot:local:000000000000:thing/{thing}", (string)created["thingArn"]!);
        Assert.Equal((string)created["thingId"]!, (string)described["thingId"]!);
        Assert.Equal(thing, (string)described["defaultClientId"]!);
        Assert.Equal(type, (string)described["thingTypeName"]!);
        Assert.Equal("kitchen", (string)described["attributes"]!["room"]!);
        Assert.Equal(1, (long)described["version"]!);
        await AssertProblemAsync(stale, HttpStatusCode.Conflict, "VersionConflictException");
        var only = Assert.Single(listed["things"]!.AsArray());
        Assert.Equal(thing, (string)only!["thingName"]!);
        Assert.Equal(2, (long)only["version"]!);
        Assert.Equal("2", (string)only["attributes"]!["floor"]!);
        Assert.Equal(["room"], typeDoc["thingTypeProperties"]!["searchableAttributes"]!.AsArray().Select(a => (string)a!));
        Assert.False((bool)typeDoc["thingTypeMetadata"]!["deprecated"]!);
        await AssertProblemAsync(gone, HttpStatusCode.NotFound, "ResourceNotFoundException");
    }

    [Fact]
    public async Task BadRequests_GetAwsErrors_AsProblemJson()
    {
        var thing = Ids.NewId("apibad");
        await OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Body("""{"attributePayload":{"attributes":{"a":"1"}}}""")));

        await AssertProblemAsync(await node.Http.PostAsync($"/api/things/{thing}", Body("""{"attributePayload":{"attributes":{"a":"2"}}}""")), HttpStatusCode.Conflict, "ResourceAlreadyExistsException");
        await AssertProblemAsync(await node.Http.PostAsync($"/api/things/{Ids.NewId("apibad")}", Body("""{"attributePayload":{"attributes":{"a":"1","b":"2","c":"3","d":"4"}}}""")), HttpStatusCode.BadRequest, "InvalidRequestException");
        await AssertProblemAsync(await node.Http.PostAsync($"/api/things/{Ids.NewId("apibad")}", Body("""{"thingTypeName":"no-such-type"}""")), HttpStatusCode.NotFound, "ResourceNotFoundException");
        await AssertProblemAsync(await node.Http.GetAsync("/api/things?maxResults=251"), HttpStatusCode.BadRequest, "InvalidRequestException");
        await AssertProblemAsync(await node.Http.GetAsync("/api/things?nextToken=%25%25"), HttpStatusCode.BadRequest, "InvalidRequestException");
        await AssertProblemAsync(await node.Http.PutAsync("/api/thing-groups/addThingToThingGroup", Body("""{"thingName":"x"}""")), HttpStatusCode.BadRequest, "InvalidRequestException");
        // A name that would break out of a string in SQL is just a name that breaks the naming rules.
        await AssertProblemAsync(await node.Http.PostAsync($"/api/things/{Uri.EscapeDataString("x'; DROP TABLE iot_things;--")}", Body("{}")), HttpStatusCode.BadRequest, "InvalidRequestException");
    }

    [Fact]
    public async Task Groups_Hierarchy_Membership_AndListsBothWays()
    {
        var (root, child, thing) = (Ids.NewId("apiroot"), Ids.NewId("apichild"), Ids.NewId("apimember"));
        await OkAsync(await node.Http.PostAsync($"/api/thing-groups/{root}", Body("""{"thingGroupProperties":{"thingGroupDescription":"site","attributePayload":{"attributes":{"city":"berlin"}}}}""")));
        var childCreated = await OkAsync(await node.Http.PostAsync($"/api/thing-groups/{child}", Body($$"""{"parentGroupName":"{{root}}"}""")));
        await OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Body("{}")));

        await OkAsync(await node.Http.PutAsync("/api/thing-groups/addThingToThingGroup", Body($$"""{"thingGroupName":"{{child}}","thingName":"{{thing}}"}""")));
        var sameHierarchy = await node.Http.PutAsync("/api/thing-groups/addThingToThingGroup", Body($$"""{"thingGroupName":"{{root}}","thingName":"{{thing}}"}"""));
        var describedChild = await OkAsync(await node.Http.GetAsync($"/api/thing-groups/{child}"));
        var children = await OkAsync(await node.Http.GetAsync($"/api/thing-groups?parentGroup={root}"));
        var inRoot = await OkAsync(await node.Http.GetAsync($"/api/thing-groups/{root}/things?recursive=true"));
        var ofThing = await OkAsync(await node.Http.GetAsync($"/api/things/{thing}/thing-groups"));
        var version = await OkAsync(await node.Http.PatchAsync($"/api/thing-groups/{root}", Body("""{"thingGroupProperties":{"attributePayload":{"attributes":{"zone":"1"},"merge":true}},"expectedVersion":1}""")));
        var withChildren = await node.Http.DeleteAsync($"/api/thing-groups/{root}");
        await OkAsync(await node.Http.PutAsync("/api/thing-groups/removeThingFromThingGroup", Body($$"""{"thingGroupName":"{{child}}","thingName":"{{thing}}"}""")));
        var afterRemove = await OkAsync(await node.Http.GetAsync($"/api/thing-groups/{root}/things?recursive=true"));

        Assert.EndsWith($":thinggroup/{child}", (string)childCreated["thingGroupArn"]!, StringComparison.Ordinal);
        await AssertProblemAsync(sameHierarchy, HttpStatusCode.BadRequest, "InvalidRequestException");
        Assert.Equal(root, (string)describedChild["thingGroupMetadata"]!["parentGroupName"]!);
        Assert.Equal(root, (string)describedChild["thingGroupMetadata"]!["rootToParentThingGroups"]![0]!["groupName"]!);
        Assert.Equal([child], children["thingGroups"]!.AsArray().Select(g => (string)g!["groupName"]!));
        Assert.Equal([thing], inRoot["things"]!.AsArray().Select(t => (string)t!));
        Assert.Equal([child], ofThing["thingGroups"]!.AsArray().Select(g => (string)g!["groupName"]!));
        Assert.Equal(2, (long)version["version"]!);
        await AssertProblemAsync(withChildren, HttpStatusCode.BadRequest, "InvalidRequestException");
        Assert.Empty(afterRemove["things"]!.AsArray());
    }

    [Fact]
    public async Task ThingStatus_IsAtItsOwnPath_AndDescribeThing_IsTheRegistry()
    {
        // A device may connect without being registered (as on AWS): its status is known, DescribeThing is 404.
        var clientId = Ids.NewId("unregistered");
        var client = await node.ConnectAsync(clientId);
        await client.DisconnectAsync();

        var status = await Eventually.Get(() => node.GetThingAsync(clientId), s => s is not null, "the status");
        var describe = await node.Http.GetAsync($"/api/things/{clientId}");

        Assert.Equal(clientId, status!.ThingName);
        await AssertProblemAsync(describe, HttpStatusCode.NotFound, "ResourceNotFoundException");
    }
}
