using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Security;

/// <summary>A node whose admin key is not configured: it makes one at first start and logs it once.</summary>
public sealed class UnconfiguredKeyNodeFixture : NodeFixture
{
    protected override string? ConfiguredAdminKey => null;
}

/// <summary>Backend access with API keys: 401 without one, roles decide what a key may do, every change audited with its key id.</summary>
[Collection(NodeCollection.Name)]
public sealed partial class ApiKeysTests(NodeFixture node)
{
    private static StringContent Body(JsonNode json) => new(json.ToJsonString(), Encoding.UTF8, "application/json");

    private HttpClient As(string? key)
    {
        var client = new HttpClient { BaseAddress = node.Http.BaseAddress };
        if (key is not null)
        {
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        }

        return client;
    }

    private async Task<(string KeyId, string Key)> CreateKeyAsync(string role)
    {
        var created = await ApiAssert.OkAsync(await node.Http.PostAsync("/api/apikeys", Body(new JsonObject { ["name"] = $"{role} key", ["role"] = role })));
        Assert.Equal(role, (string)created["role"]!);
        return ((string)created["keyId"]!, (string)created["key"]!);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("wrong")]
    [InlineData("oiot_0123456789abcdef_not-the-secret")]
    [InlineData("test-admin-key-0123456789x")]
    public async Task WithoutAValidKey_TheApiAnswers401(string? key)
    {
        using var client = As(key);
        foreach (var path in new[] { "/api/things", "/things/x/shadow" })
        {
            var response = await client.GetAsync(path);
            await ApiAssert.ProblemAsync(response, HttpStatusCode.Unauthorized, "UnauthorizedException");
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.Single().Scheme);
        }

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("/health")).StatusCode);   // not an API call
    }

    [Fact]
    public async Task Roles_ReaderReads_OperatorOperates_OnlyAdminChangesIdentity()
    {
        var (_, readerKey) = await CreateKeyAsync("reader");
        var (_, operatorKey) = await CreateKeyAsync("operator");
        using var reader = As(readerKey);
        using var @operator = As(operatorKey);
        var thing = "keys-" + Guid.NewGuid().ToString("N")[..8];

        await ApiAssert.OkAsync(await reader.GetAsync("/api/things"));
        await ApiAssert.OkAsync(await reader.PostAsync("/api/effective-policies?thingName=nobody", Body(new JsonObject())));   // a read AWS does with POST
        await ApiAssert.ProblemAsync(await reader.PostAsync($"/api/things/{thing}", Body(new JsonObject())), HttpStatusCode.Forbidden, "AccessDeniedException");

        await ApiAssert.OkAsync(await @operator.PostAsync($"/api/things/{thing}", Body(new JsonObject())));
        await ApiAssert.OkAsync(await @operator.PostAsync($"/things/{thing}/shadow", Body(new JsonObject { ["state"] = new JsonObject { ["desired"] = new JsonObject { ["on"] = true } } })));
        await ApiAssert.OkAsync(await @operator.GetAsync("/api/certificates"));
        await ApiAssert.ProblemAsync(await @operator.PostAsync("/api/keys-and-certificate?setAsActive=true", null), HttpStatusCode.Forbidden, "AccessDeniedException");
        await ApiAssert.ProblemAsync(await @operator.PostAsync("/api/policies/op-policy", Body(new JsonObject { ["policyDocument"] = "{}" })), HttpStatusCode.Forbidden, "AccessDeniedException");
        await ApiAssert.ProblemAsync(await @operator.PostAsync("/api/apikeys", Body(new JsonObject { ["name"] = "x", ["role"] = "admin" })), HttpStatusCode.Forbidden, "AccessDeniedException");

        await ApiAssert.OkAsync(await node.Http.PostAsync("/api/keys-and-certificate", null));   // admin
    }

    /// <summary>Access comes from each endpoint's metadata: an API endpoint mapped without it would be open to anyone.</summary>
    [Fact]
    public void EveryApiEndpoint_DeclaresWhoMayCallIt()
    {
        var endpoints = node.App.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.RoutePattern.RawText is { } route && (route.StartsWith("/api", StringComparison.Ordinal)
                || route.StartsWith("/things", StringComparison.Ordinal) || route.StartsWith("/topics", StringComparison.Ordinal)))
            .ToList();
        Assert.True(endpoints.Count > 80, $"{endpoints.Count} API endpoints found");
        Assert.Empty(endpoints.Where(e => e.Metadata.GetOrderedMetadata<IAuthorizeData>().Count == 0).Select(e => e.DisplayName));
        var deviceCalls = endpoints.Where(e => e.Metadata.GetMetadata<OrleansIot.Gateway.Http.DeviceAccess>() is not null)
            .Select(e => e.Metadata.GetMetadata<IEndpointNameMetadata>()!.EndpointName).Order(StringComparer.Ordinal);
        Assert.Equal(["DeleteThingShadow", "DeviceDescribeJobExecution", "GetPendingJobExecutions", "GetThingShadow", "Publish", "StartNextPendingJobExecution", "UpdateJobExecution", "UpdateThingShadow"], deviceCalls);   // devices: the data plane only
    }

    [Fact]
    public async Task KeysAreListedWithoutSecrets_AndADeletedKeyStopsWorking()
    {
        var (keyId, key) = await CreateKeyAsync("reader");
        using var client = As(key);
        await ApiAssert.OkAsync(await client.GetAsync("/api/things"));

        var listed = await node.Http.GetStringAsync("/api/apikeys");
        Assert.Contains(keyId, listed, StringComparison.Ordinal);
        Assert.DoesNotContain(key[22..], listed, StringComparison.Ordinal);

        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/apikeys/{keyId}"));

        await ApiAssert.ProblemAsync(await client.GetAsync("/api/things"), HttpStatusCode.Unauthorized, "UnauthorizedException");
        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/apikeys/{keyId}"), HttpStatusCode.NotFound, "ResourceNotFoundException");
    }

    [Theory]
    [InlineData("""{"name":"x","role":"root"}""")]
    [InlineData("""{"name":"","role":"reader"}""")]
    public async Task BadKeyRequests_AreRefused(string body)
    {
        var response = await node.Http.PostAsync("/api/apikeys", new StringContent(body, Encoding.UTF8, "application/json"));
        await ApiAssert.ProblemAsync(response, HttpStatusCode.BadRequest, "InvalidRequestException");
    }

    [Fact]
    public async Task ChangesAreAudited_WithTheKeyId_RefusalsToo()
    {
        var (keyId, key) = await CreateKeyAsync("operator");
        using var client = As(key);
        var thing = "audit-key-" + Guid.NewGuid().ToString("N")[..8];
        await ApiAssert.OkAsync(await client.PostAsync($"/api/things/{thing}", Body(new JsonObject())));
        await client.PostAsync("/api/keys-and-certificate", null);

        var events = await Eventually.Get(
            async () => (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/audit?principal={keyId}")))["events"]!.AsArray(),
            e => e.Count >= 2, "two audited calls");
        Assert.Contains(events, e => (string)e!["operation"]! == "CreateThing" && (int)e["status"]! == 200);
        Assert.Contains(events, e => (string)e!["operation"]! == "CreateKeysAndCertificate" && (int)e["status"]! == 403);
    }

    [Fact]
    public async Task WithoutAConfiguredKey_TheFirstStartMakesAnAdminKey_AndLogsItOnce()
    {
        var fresh = new UnconfiguredKeyNodeFixture();
        await fresh.InitializeAsync();
        try
        {
            var line = await Eventually.Get(
                () => Task.FromResult(fresh.Logs.Entries.FirstOrDefault(e => e.Message.Contains("made the admin API key", StringComparison.Ordinal))),
                e => e is not null, "the first-start key in the log");
            var key = KeyPattern().Match(line!.Message).Value;
            using var client = new HttpClient { BaseAddress = fresh.Http.BaseAddress };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
            var keys = await ApiAssert.OkAsync(await client.GetAsync("/api/apikeys"));
            Assert.Equal("admin", (string)keys["apiKeys"]![0]!["role"]!);
            Assert.Single(fresh.Logs.Entries, e => e.Message.Contains("made the admin API key", StringComparison.Ordinal));
        }
        finally
        {
            await fresh.DisposeAsync();
        }
    }

    [GeneratedRegex("oiot_[0-9a-f]{16}_[A-Za-z0-9_-]+")]
    private static partial Regex KeyPattern();
}
