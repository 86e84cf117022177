using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.WebConsole;

/// <summary>
/// The Orleans Dashboard at <c>/dashboard</c>, for admins: a browser gets there with a session cookie the console asks
/// for with its admin key; without a valid one the dashboard answers 401, and the cookie opens nothing else.
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class DashboardTests(NodeFixture node)
{
    private HttpClient Browser(string? cookie = null)
    {
        var client = new HttpClient(new HttpClientHandler { UseCookies = false }) { BaseAddress = node.Http.BaseAddress };
        if (cookie is not null)
        {
            client.DefaultRequestHeaders.Add("Cookie", cookie);
        }

        return client;
    }

    private async Task<HttpResponseMessage> StartSessionAsync(string key)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/console/dashboard-session");
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return await node.Http.SendAsync(request);
    }

    private async Task<(string KeyId, string Key)> CreateKeyAsync(string role)
    {
        var created = await ApiAssert.OkAsync(await node.Http.PostAsync("/api/apikeys",
            new StringContent(new JsonObject { ["name"] = $"dashboard {role}", ["role"] = role }.ToJsonString(), Encoding.UTF8, "application/json")));
        return ((string)created["keyId"]!, (string)created["key"]!);
    }

    private static string CookieOf(HttpResponseMessage response)
    {
        var header = Assert.Single(response.Headers.GetValues("Set-Cookie"));
        Assert.Contains("path=/dashboard", header, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("httponly", header, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("samesite=strict", header, StringComparison.OrdinalIgnoreCase);
        return header.Split(';')[0];
    }

    [Fact]
    public async Task AnAdminsSession_OpensTheDashboard_AndNothingElse()
    {
        using var anonymous = Browser();
        await ApiAssert.ProblemAsync(await anonymous.GetAsync("/dashboard/"), HttpStatusCode.Unauthorized, "UnauthorizedException");

        var started = await StartSessionAsync(NodeFixture.AdminKey);
        Assert.Equal(HttpStatusCode.NoContent, started.StatusCode);
        using var browser = Browser(CookieOf(started));
        var page = await browser.GetAsync("/dashboard/");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Contains("Orleans Dashboard", await page.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        var counters = JsonNode.Parse(await browser.GetStringAsync("/dashboard/DashboardCounters"))!;
        Assert.Contains(counters["hosts"]!.AsArray(), host => (string)host!["status"]! == "Active");

        // The cookie is not an API credential.
        Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync("/api/things")).StatusCode);
    }

    [Fact]
    public async Task ATamperedSession_AndOneWhoseKeyWasDeleted_AreRefused()
    {
        var (keyId, key) = await CreateKeyAsync("admin");
        var cookie = CookieOf(await StartSessionAsync(key));
        using (var browser = Browser(cookie))
        {
            Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync("/dashboard/ClusterStats")).StatusCode);
        }

        // A later expiry with the same signature.
        var parts = cookie.Split('.');
        var stretched = $"{parts[0]}.{long.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture) + 3600}.{parts[2]}";
        using (var browser = Browser(stretched))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync("/dashboard/ClusterStats")).StatusCode);
        }

        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/apikeys/{keyId}"));
        using (var browser = Browser(cookie))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await browser.GetAsync("/dashboard/ClusterStats")).StatusCode);
        }
    }

    [Fact]
    public async Task ReadersAndOperators_GetNoSession()
    {
        foreach (var role in new[] { "reader", "operator" })
        {
            var (_, key) = await CreateKeyAsync(role);
            await ApiAssert.ProblemAsync(await StartSessionAsync(key), HttpStatusCode.Forbidden, "AccessDeniedException");
        }
    }
}
