using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Http;

/// <summary>
/// The HTTP API as its users read it: every endpoint in the OpenAPI document under AWS's operation name with the
/// schemas of what it takes and answers, an interactive reference served by the node itself, and one error shape.
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class ApiReferenceTests(NodeFixture node)
{
    /// <summary>AWS answers these with 200 and no body.</summary>
    // Answers with no body: DeleteConnection (AWS's), StartDashboardSession (204 and a cookie).
    private static readonly HashSet<string> EmptyAnswers = new(StringComparer.Ordinal) { "DeleteConnection", "StartDashboardSession" };

    private async Task<JsonObject> DocumentAsync()
    {
        using var anonymous = new HttpClient { BaseAddress = node.Http.BaseAddress };   // no key: the description is public
        return (await ApiAssert.OkAsync(await anonymous.GetAsync("/openapi/v1.json"))).AsObject();
    }

    private IReadOnlyList<(string Name, string Path, string Method, Endpoint Endpoint)> MappedOperations() =>
        [.. node.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<IEndpointNameMetadata>() is not null && e.Metadata.GetMetadata<IExcludeFromDescriptionMetadata>() is not { ExcludeFromDescription: true })
            .SelectMany(e => e.Metadata.GetMetadata<HttpMethodMetadata>()!.HttpMethods.Select(m => (
                e.Metadata.GetMetadata<IEndpointNameMetadata>()!.EndpointName,
                "/" + string.Join('/', e.RoutePattern.PathSegments.Select(s => string.Concat(s.Parts.Select(p => p switch
                {
                    Microsoft.AspNetCore.Routing.Patterns.RoutePatternLiteralPart l => l.Content,
                    Microsoft.AspNetCore.Routing.Patterns.RoutePatternParameterPart a => $"{{{a.Name}}}",
                    _ => "",
                })))),
                m.ToLowerInvariant(),
                (Endpoint)e)))];

    [Fact]
    public async Task EveryEndpoint_IsInTheOpenApiDocument_UnderItsAwsName_WithTheSchemasOfWhatItTakesAndAnswers()
    {
        var paths = (await DocumentAsync())["paths"]!.AsObject();
        var operations = MappedOperations();
        Assert.True(operations.Count > 80, $"{operations.Count} operations mapped");

        var problems = new List<string>();
        foreach (var (name, path, method, endpoint) in operations)
        {
            if (paths[path]?[method] is not JsonObject operation)
            {
                problems.Add($"{name} ({method} {path}) is not in the document");
                continue;
            }

            if ((string?)operation["operationId"] != name)
            {
                problems.Add($"{method} {path} is {(string?)operation["operationId"]}, not {name}");
            }

            if (!EmptyAnswers.Contains(name) && operation["responses"]?["200"]?["content"]?.AsObject().FirstOrDefault().Value?["schema"] is null)
            {
                problems.Add($"{name}: no schema for its 200 answer");
            }

            var readsBody = endpoint.Metadata.GetMetadata<IAcceptsMetadata>() is not null || endpoint.Metadata.GetMetadata<OrleansIot.Gateway.Http.OptionalBody>() is not null;
            if (readsBody && operation["requestBody"]?["content"]?.AsObject().FirstOrDefault().Value?["schema"] is null)
            {
                problems.Add($"{name}: no schema for its request body");
            }
        }

        Assert.Empty(problems);
    }

    [Fact]
    public async Task TheDocument_DescribesRequestAndResponseFields_AsAwsNamesThem()
    {
        var document = await DocumentAsync();
        var createThing = document["paths"]!["/api/things/{thingName}"]!["post"]!;
        Assert.Contains("thingName", createThing["parameters"]!.AsArray().Select(p => (string?)p!["name"]));
        var schemas = document["components"]!["schemas"]!.AsObject();
        Assert.Equal(["thingArn", "thingId", "thingName"], schemas["CreateThingResponse"]!["properties"]!.AsObject().Select(p => p.Key).Order(StringComparer.Ordinal));
        Assert.Contains("attributePayload", schemas["CreateThingBody"]!["properties"]!.AsObject().Select(p => p.Key));
    }

    [Fact]
    public async Task TheReferencePage_IsServedByTheNode_WithoutAnythingFromTheInternet()
    {
        using var anonymous = new HttpClient { BaseAddress = node.Http.BaseAddress };
        var page = await anonymous.GetStringAsync("/docs/");
        Assert.Contains("openapi/v1.json", page, StringComparison.Ordinal);
        Assert.DoesNotMatch("(src|href)=\"(https?:)?//", page);   // scripts and styles from the node itself
        Assert.Contains("\"withDefaultFonts\":false", page, StringComparison.Ordinal);   // Scalar's fonts would come from its CDN
        foreach (System.Text.RegularExpressions.Match script in System.Text.RegularExpressions.Regex.Matches(page, "src=\"([^\"]+)\""))
        {
            var response = await anonymous.GetAsync(new Uri(new Uri(anonymous.BaseAddress!, "/docs/"), script.Groups[1].Value));
            Assert.True(response.IsSuccessStatusCode, $"{script.Groups[1].Value}: {(int)response.StatusCode}");
        }
    }

    [Theory]
    [InlineData("{\"attributePayload\": {\"attributes\": {\"a\": \"1\"}", "malformed JSON")]
    [InlineData("{\"attributePayload\": {\"attributes\": 5}}", "a value of the wrong type")]
    [InlineData("[1, 2]", "an array for an object")]
    public async Task BadBodies_AreRefusedAsAwsDoes_Audited_AndChangeNothing(string body, string what)
    {
        var thing = Ids.NewId("bad-body");
        var response = await node.Http.PostAsync($"/api/things/{thing}", new StringContent(body, Encoding.UTF8, "application/json"));

        await ApiAssert.ProblemAsync(response, HttpStatusCode.BadRequest, "InvalidRequestException");
        Assert.Equal(HttpStatusCode.NotFound, (await node.Http.GetAsync($"/api/things/{thing}")).StatusCode);
        var events = await Eventually.Get(
            async () => (await ApiAssert.OkAsync(await node.Http.GetAsync("/api/audit?operation=CreateThing")))["events"]!.AsArray(),
            e => e.Any(x => (string?)x!["target"] == $"thingName={thing}"), $"the refused call ({what}) audited");
        Assert.Equal(400, (int)events.Single(x => (string?)x!["target"] == $"thingName={thing}")!["status"]!);
    }

    [Theory]
    [InlineData("/api/audit?maxResults=many")]
    [InlineData("/api/audit?from=yesterday")]
    [InlineData("/api/queues/q/receive?maxMessages=11")]
    public async Task BadQueryValues_AreRefusedAsInvalidRequests(string url)
    {
        var response = url.Contains("receive", StringComparison.Ordinal) ? await node.Http.PostAsync(url, null) : await node.Http.GetAsync(url);
        await ApiAssert.ProblemAsync(response, HttpStatusCode.BadRequest, "InvalidRequestException");
    }
}
