using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Control plane: IoT policies with AWS's paths and shapes: <c>CreatePolicy</c> (<c>POST /api/policies/{name}</c>),
/// <c>GetPolicy</c>, <c>ListPolicies</c>, <c>DeletePolicy</c>, <c>CreatePolicyVersion</c> (<c>POST …/version?setAsDefault=</c>),
/// <c>ListPolicyVersions</c>, <c>GetPolicyVersion</c>, <c>SetDefaultPolicyVersion</c> (PATCH), <c>DeletePolicyVersion</c>,
/// <c>AttachPolicy</c> (<c>PUT /api/target-policies/{name}</c>), <c>DetachPolicy</c> (POST), <c>ListTargetsForPolicy</c>
/// (<c>POST /api/policy-targets/{name}</c>), <c>ListAttachedPolicies</c> (<c>POST /api/attached-policies/{target}</c>) and
/// <c>GetEffectivePolicies</c> (<c>POST /api/effective-policies?thingName=</c>). <c>policyDocument</c> is a JSON string as
/// in AWS (an object is accepted too).
/// </summary>
public static class PoliciesApi
{
    public static IEndpointRouteBuilder MapPoliciesApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/api").WithTags("Policies").ChangedBy(ApiKeyRoles.Admin);
        api.MapPost("/policies/{policyName}", async (string policyName, JsonObject body, IGrainFactory grains, IOptions<RegistryOptions> o) =>
        {
            var version = await grains.GetGrain<IPolicyGrain>(policyName).Create(Document(body));
            return JsonText.Result(new JsonObject
            {
                ["policyName"] = policyName,
                ["policyArn"] = Arn(o, policyName),
                ["policyDocument"] = version.PolicyDocument,
                ["policyVersionId"] = version.VersionId,
            });
        }).WithName("CreatePolicy");
        api.MapGet("/policies/{policyName}", async (string policyName, IGrainFactory grains, IOptions<RegistryOptions> o) =>
            await grains.GetGrain<IPolicyGrain>(policyName).Get() is { } policy
                ? JsonText.Result(new JsonObject
                {
                    ["policyName"] = policy.PolicyName,
                    ["policyArn"] = Arn(o, policy.PolicyName),
                    ["policyDocument"] = policy.PolicyDocument,
                    ["defaultVersionId"] = policy.DefaultVersionId,
                    ["creationDate"] = policy.CreationDate.ToUnixTimeSeconds(),
                    ["lastModifiedDate"] = policy.LastModifiedDate.ToUnixTimeSeconds(),
                    ["generationId"] = policy.GenerationId,
                })
                : Problems.NotFound("ResourceNotFoundException", $"Policy {policyName} cannot be found.")).WithName("GetPolicy");
        api.MapGet("/policies", async (string? marker, int? pageSize, IGrainFactory grains, IOptions<RegistryOptions> o) =>
        {
            var (names, next) = await grains.GetGrain<IPolicyQueryGrain>(0).List(marker, Math.Clamp(pageSize ?? 250, 1, 250));
            return JsonText.Result(new JsonObject
            {
                ["policies"] = new JsonArray([.. names.Select(n => (JsonNode?)new JsonObject { ["policyName"] = n, ["policyArn"] = Arn(o, n) })]),
                ["nextMarker"] = next,
            });
        }).WithName("ListPolicies");
        api.MapDelete("/policies/{policyName}", async (string policyName, IGrainFactory grains) =>
        {
            await grains.GetGrain<IPolicyGrain>(policyName).Delete();
            return TypedResults.Ok(new { });
        }).WithName("DeletePolicy");
        api.MapPost("/policies/{policyName}/version", async (string policyName, bool? setAsDefault, JsonObject body, IGrainFactory grains, IOptions<RegistryOptions> o) =>
        {
            var version = await grains.GetGrain<IPolicyGrain>(policyName).CreateVersion(Document(body), setAsDefault ?? false);
            return JsonText.Result(Version(o, version));
        }).WithName("CreatePolicyVersion");
        api.MapGet("/policies/{policyName}/version", async (string policyName, IGrainFactory grains) =>
        {
            var versions = await grains.GetGrain<IPolicyGrain>(policyName).ListVersions();
            return JsonText.Result(new JsonObject
            {
                ["policyVersions"] = new JsonArray([.. versions.Select(v => (JsonNode?)new JsonObject
                {
                    ["versionId"] = v.VersionId,
                    ["isDefaultVersion"] = v.IsDefaultVersion,
                    ["createDate"] = v.CreateDate.ToUnixTimeSeconds(),
                })]),
            });
        }).WithName("ListPolicyVersions");
        api.MapGet("/policies/{policyName}/version/{versionId}", async (string policyName, string versionId, IGrainFactory grains, IOptions<RegistryOptions> o) =>
            await grains.GetGrain<IPolicyGrain>(policyName).GetVersion(versionId) is { } version
                ? JsonText.Result(Version(o, version))
                : Problems.NotFound("ResourceNotFoundException", $"Version {versionId} of policy {policyName} cannot be found.")).WithName("GetPolicyVersion");
        api.MapMethods("/policies/{policyName}/version/{versionId}", ["PATCH"], async (string policyName, string versionId, IGrainFactory grains) =>
        {
            await grains.GetGrain<IPolicyGrain>(policyName).SetDefaultVersion(versionId);
            return TypedResults.Ok(new { });
        }).WithName("SetDefaultPolicyVersion");
        api.MapDelete("/policies/{policyName}/version/{versionId}", async (string policyName, string versionId, IGrainFactory grains) =>
        {
            await grains.GetGrain<IPolicyGrain>(policyName).DeleteVersion(versionId);
            return TypedResults.Ok(new { });
        }).WithName("DeletePolicyVersion");
        api.MapPut("/target-policies/{policyName}", async (string policyName, JsonObject body, IGrainFactory grains) =>
        {
            await grains.GetGrain<IPolicyGrain>(policyName).Attach(Target(body));
            return TypedResults.Ok(new { });
        }).WithName("AttachPolicy");
        api.MapPost("/target-policies/{policyName}", async (string policyName, JsonObject body, IGrainFactory grains) =>
        {
            await grains.GetGrain<IPolicyGrain>(policyName).Detach(Target(body));
            return TypedResults.Ok(new { });
        }).WithName("DetachPolicy");
        api.MapPost("/policy-targets/{policyName}", async (string policyName, IGrainFactory grains) =>
            JsonText.Result(new JsonObject { ["targets"] = new JsonArray([.. (await grains.GetGrain<IPolicyGrain>(policyName).ListTargets()).Select(t => (JsonNode?)t)]) }))
            .WithName("ListTargetsForPolicy").ReadOnly();
        api.MapPost("/attached-policies/{*target}", async (string target, IGrainFactory grains, IOptions<RegistryOptions> o) =>
        {
            var effective = await grains.GetGrain<IPolicyQueryGrain>(0).Effective(Uri.UnescapeDataString(target), null);
            return JsonText.Result(new JsonObject
            {
                ["policies"] = new JsonArray([.. effective.Select(p => (JsonNode?)new JsonObject { ["policyName"] = p.PolicyName, ["policyArn"] = Arn(o, p.PolicyName) })]),
            });
        }).WithName("ListAttachedPolicies").ReadOnly();
        api.MapPost("/effective-policies", async (string? thingName, HttpRequest request, IGrainFactory grains, IOptions<RegistryOptions> o) =>
        {
            var body = request.ContentLength > 0 ? await request.ReadFromJsonAsync<JsonObject>() : null;
            var principal = JsonText.Field(body, "principal");
            if (principal is null && thingName is null)
            {
                throw ApiException.Invalid("Give a principal (certificate ARN), a thingName, or both.");
            }

            var effective = await grains.GetGrain<IPolicyQueryGrain>(0).Effective(principal, thingName);
            return JsonText.Result(new JsonObject
            {
                ["effectivePolicies"] = new JsonArray([.. effective.Select(e => (JsonNode?)new JsonObject
                {
                    ["policyName"] = e.PolicyName,
                    ["policyArn"] = Arn(o, e.PolicyName),
                    ["policyDocument"] = e.PolicyDocument,
                })]),
            });
        }).WithName("GetEffectivePolicies").ReadOnly();
        return endpoints;
    }

    private static string Arn(IOptions<RegistryOptions> options, string policyName) => options.Value.Arn($"policy/{policyName}");

    private static JsonObject Version(IOptions<RegistryOptions> o, PolicyVersionInfo v) => new()
    {
        ["policyName"] = v.PolicyName,
        ["policyArn"] = Arn(o, v.PolicyName),
        ["policyDocument"] = v.PolicyDocument,
        ["policyVersionId"] = v.VersionId,
        ["isDefaultVersion"] = v.IsDefaultVersion,
        ["creationDate"] = v.CreateDate.ToUnixTimeSeconds(),
    };

    private static string Document(JsonObject body) => body["policyDocument"] switch
    {
        JsonValue v when v.TryGetValue<string>(out var text) => text,
        JsonObject o => o.ToJsonString(),
        _ => throw new ApiException(400, "MalformedPolicyException", "policyDocument is required (the policy as a JSON string)."),
    };

    private static string Target(JsonObject body) => JsonText.Required(body, "target", "a certificate or thing group ARN");
}
