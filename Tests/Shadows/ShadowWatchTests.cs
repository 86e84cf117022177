using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Shadows;

/// <summary><c>GET /api/things/{name}/shadow/changes</c>: the console's live view, as server-sent events.</summary>
[Collection(NodeCollection.Name)]
public sealed class ShadowWatchTests(NodeFixture node)
{
    [Fact]
    public async Task AWatcher_GetsTheDocumentNow_AndEachNewVersion_WithoutBeingMeteredAsShadowOperations()
    {
        var thing = Ids.NewId("watched");
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/things/{thing}/shadow", new StringContent("""{"state":{"reported":{"temp":20}}}""", Encoding.UTF8, "application/json")));
        var today = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
        var before = (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/usage?thingName={thing}&from={today}&to={today}")))["total"]!["shadowOperations"]!.GetValue<long>();

        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        using var request = new HttpRequestMessage(HttpMethod.Get, $"/api/things/{thing}/shadow/changes");
        using var response = await node.Http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        using var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));

        var (first, now) = await ServerSentEvents.NextAsync(reader).WaitAsync(timeout.Token);
        Assert.Equal("shadow", first);
        Assert.Equal(1, JsonNode.Parse(now)!["version"]!.GetValue<long>());

        await ApiAssert.OkAsync(await node.Http.PostAsync($"/things/{thing}/shadow", new StringContent("""{"state":{"reported":{"temp":21}}}""", Encoding.UTF8, "application/json")));
        var (next, changed) = await ServerSentEvents.NextAsync(reader).WaitAsync(timeout.Token);
        Assert.Equal("shadow", next);
        var document = JsonNode.Parse(changed)!;
        Assert.Equal(2, document["version"]!.GetValue<long>());
        Assert.Equal(21, document["state"]!["reported"]!["temp"]!.GetValue<int>());

        // Deleted: a "none" event; created again: the new version.
        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/things/{thing}/shadow"));
        Assert.Equal("none", (await ServerSentEvents.NextAsync(reader).WaitAsync(timeout.Token)).Event);
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/things/{thing}/shadow", new StringContent("""{"state":{"reported":{"temp":5}}}""", Encoding.UTF8, "application/json")));
        var (again, recreated) = await ServerSentEvents.NextAsync(reader).WaitAsync(timeout.Token);
        Assert.Equal("shadow", again);
        Assert.Equal(5, JsonNode.Parse(recreated)!["state"]!["reported"]!["temp"]!.GetValue<int>());

        // Watching is not metered: only the updates and the delete count.
        var after = await Eventually.Get(
            async () => (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/usage?thingName={thing}&from={today}&to={today}")))["total"]!["shadowOperations"]!.GetValue<long>(),
            n => n >= before + 3, "the changes to be metered");
        Assert.Equal(before + 3, after);
    }

    [Fact]
    public async Task Watching_NeedsAKey()
    {
        using var anonymous = new HttpClient { BaseAddress = node.Http.BaseAddress };
        await ApiAssert.ProblemAsync(await anonymous.GetAsync($"/api/things/{Ids.NewId("w")}/shadow/changes"), HttpStatusCode.Unauthorized, "UnauthorizedException");
    }
}
