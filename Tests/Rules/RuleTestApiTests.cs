using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Rules;

/// <summary><c>POST /api/rules/test</c>: rule SQL tried on a sample message over HTTP, end to end.</summary>
[Collection(NodeCollection.Name)]
public sealed class RuleTestApiTests(NodeFixture node)
{
    private async Task<HttpResponseMessage> TestAsync(string json) =>
        await node.Http.PostAsync("/api/rules/test", new StringContent(json, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task ASelectingRule_ShowsItsOutput()
    {
        var response = await TestAsync("""
            {"sql":"SELECT temperature, topic(2) AS device, clientid() AS c FROM 'dt/+/telemetry' WHERE temperature > 0",
             "topic":"dt/dev7/telemetry","payload":{"temperature":22},"clientId":"dev7"}
            """);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.True((bool)result["topicMatches"]!);
        Assert.True((bool)result["selected"]!);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("""{"temperature":22,"device":"dev7","c":"dev7"}"""), result["output"]));
    }

    [Fact]
    public async Task WhereFalse_AndAnotherTopic_AreSaid_AndBinaryOutputIsBase64()
    {
        var filtered = JsonNode.Parse(await (await TestAsync("""{"sql":"SELECT * FROM 'a/+' WHERE x > 5","topic":"b/c","payload":{"x":1}}""")).Content.ReadAsStringAsync())!;
        var binary = JsonNode.Parse(await (await TestAsync("""{"sql":"SELECT * FROM 'bin/#'","topic":"bin/1","payloadBase64":"AP8Q"}""")).Content.ReadAsStringAsync())!;

        Assert.False((bool)filtered["topicMatches"]!);
        Assert.False((bool)filtered["selected"]!);
        Assert.Null(filtered["output"]);
        Assert.Equal("AP8Q", (string)binary["outputBase64"]!);
    }

    [Fact]
    public async Task ASyntaxError_IsA400_WithThePosition()
    {
        var response = await TestAsync("""{"sql":"SELECT nosuch(1) FROM 'a'","topic":"a","payload":{}}""");

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        var problem = JsonNode.Parse(await response.Content.ReadAsStringAsync())!;
        Assert.Equal("SqlParseException", (string)problem["code"]!);
        Assert.Equal(7, (int)problem["position"]!);
        Assert.Contains("unknown function 'nosuch'", (string)problem["message"]!, StringComparison.Ordinal);
    }
}
