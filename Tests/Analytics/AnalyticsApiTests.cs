using System.Net;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Analytics;

/// <summary>The analytics query API (<c>GET /api/telemetry</c>) refuses what it cannot answer. What it answers is tested with the timeseries action (Tests/Rules).</summary>
[Collection(NodeCollection.Name)]
public sealed class AnalyticsApiTests(NodeFixture node)
{
    [Theory]
    [InlineData("path=t", "thingName is required")]
    [InlineData("thingName=x&bucket=5q", "bucket '5q'")]
    [InlineData("thingName=x&bucket=1m", "path is required for agg=avg")]
    [InlineData("thingName=x&path=t&bucket=1m&agg=median", "agg must be")]
    [InlineData("thingName=x&path=t&bucket=1ms&from=0&to=2000000000000", "Iot:Analytics:MaxBuckets")]
    [InlineData("thingName=x&from=yesterday", "from 'yesterday'")]
    [InlineData("thingName=x&from=2000&to=1000", "from must be before to")]
    [InlineData("thingName=x&path=a..b", "dotted path")]
    public async Task TelemetryApi_RefusesBadQueries_WithProblemJson(string query, string message)
    {
        var response = await node.Http.GetAsync("/api/telemetry?" + query);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(message, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }
}
