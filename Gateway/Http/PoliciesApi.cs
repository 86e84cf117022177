using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
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
        var api = endpoints.MapGroup("").WithTags("Policies").ChangedBy(ApiKeyRoles.Admin);
        api.MapPost("/policies/{policyName}", CreatePolicyAsync).WithName("CreatePolicy");
        api.MapGet("/policies/{policyName}", GetPolicyAsync).WithName("GetPolicy");
        api.MapGet("/policies", ListPoliciesAsync).WithName("ListPolicies");
        api.MapDelete("/policies/{policyName}", DeletePolicyAsync).WithName("DeletePolicy");
        api.MapPost("/policies/{policyName}/version", CreatePolicyVersionAsync).WithName("CreatePolicyVersion");
        api.MapGet("/policies/{policyName}/version", ListPolicyVersionsAsync).WithName("ListPolicyVersions");
        api.MapGet("/policies/{policyName}/version/{versionId}", GetPolicyVersionAsync).WithName("GetPolicyVersion");
        api.MapMethods("/policies/{policyName}/version/{versionId}", ["PATCH"], SetDefaultPolicyVersionAsync).WithName("SetDefaultPolicyVersion");
        api.MapDelete("/policies/{policyName}/version/{versionId}", DeletePolicyVersionAsync).WithName("DeletePolicyVersion");
        api.MapPut("/target-policies/{policyName}", AttachPolicyAsync).WithName("AttachPolicy");
        api.MapPost("/target-policies/{policyName}", DetachPolicyAsync).WithName("DetachPolicy");
        api.MapPost("/policy-targets/{policyName}", ListTargetsForPolicyAsync).WithName("ListTargetsForPolicy").ReadOnly();
        api.MapPost("/attached-policies/{*target}", ListAttachedPoliciesAsync).WithName("ListAttachedPolicies").ReadOnly();
        api.MapPost("/effective-policies", GetEffectivePoliciesAsync).WithName("GetEffectivePolicies").ReadOnly().WithMetadata(new OptionalBody(typeof(EffectivePoliciesBody)));
        return endpoints;
    }

    /// <summary><c>policyDocument</c>: the policy as a JSON string (AWS), or as an object.</summary>
    public sealed record PolicyDocumentBody(JsonElement? PolicyDocument);

    public sealed record PolicyTargetBody(string? Target);

    public sealed record EffectivePoliciesBody(string? Principal);

    public sealed record ListPoliciesRequest(string? Marker, int? PageSize);

    public sealed record CreatePolicyResponse(string PolicyName, string PolicyArn, string PolicyDocument, string PolicyVersionId);

    public sealed record GetPolicyResponse(
        string PolicyName, string PolicyArn, string PolicyDocument, string DefaultVersionId, long CreationDate, long LastModifiedDate, string GenerationId);

    public sealed record PolicySummary(string PolicyName, string PolicyArn);

    public sealed record ListPoliciesResponse(IReadOnlyList<PolicySummary> Policies, string? NextMarker);

    public sealed record PolicyVersionResponse(string PolicyName, string PolicyArn, string PolicyDocument, string PolicyVersionId, bool IsDefaultVersion, long CreationDate);

    public sealed record PolicyVersionSummary(string VersionId, bool IsDefaultVersion, long CreateDate);

    public sealed record ListPolicyVersionsResponse(IReadOnlyList<PolicyVersionSummary> PolicyVersions);

    public sealed record ListTargetsForPolicyResponse(IReadOnlyList<string> Targets);

    public sealed record ListAttachedPoliciesResponse(IReadOnlyList<PolicySummary> Policies);

    public sealed record EffectivePolicy(string PolicyName, string PolicyArn, string PolicyDocument);

    public sealed record GetEffectivePoliciesResponse(IReadOnlyList<EffectivePolicy> EffectivePolicies);

    private static async Task<Ok<CreatePolicyResponse>> CreatePolicyAsync(string policyName, PolicyDocumentBody body, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var version = await grains.GetGrain<IPolicyGrain>(policyName).Create(Document(body));
        return TypedResults.Ok(new CreatePolicyResponse(policyName, Arn(o, policyName), version.PolicyDocument, version.VersionId));
    }

    private static async Task<Ok<GetPolicyResponse>> GetPolicyAsync(string policyName, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var policy = await grains.GetGrain<IPolicyGrain>(policyName).Get() ?? throw ApiException.NotFound($"Policy {policyName} cannot be found.");
        return TypedResults.Ok(new GetPolicyResponse(
            policy.PolicyName, Arn(o, policy.PolicyName), policy.PolicyDocument, policy.DefaultVersionId,
            policy.CreationDate.ToUnixTimeSeconds(), policy.LastModifiedDate.ToUnixTimeSeconds(), policy.GenerationId));
    }

    private static async Task<Ok<ListPoliciesResponse>> ListPoliciesAsync([AsParameters] ListPoliciesRequest request, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var (names, next) = await grains.GetGrain<IPolicyQueryGrain>(0).List(request.Marker, Math.Clamp(request.PageSize ?? 250, 1, 250));
        return TypedResults.Ok(new ListPoliciesResponse([.. names.Select(n => new PolicySummary(n, Arn(o, n)))], next));
    }

    private static async Task<Ok<EmptyResponse>> DeletePolicyAsync(string policyName, IGrainFactory grains)
    {
        await grains.GetGrain<IPolicyGrain>(policyName).Delete();
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<PolicyVersionResponse>> CreatePolicyVersionAsync(string policyName, bool? setAsDefault, PolicyDocumentBody body, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var version = await grains.GetGrain<IPolicyGrain>(policyName).CreateVersion(Document(body), setAsDefault ?? false);
        return TypedResults.Ok(Version(o, version));
    }

    private static async Task<Ok<ListPolicyVersionsResponse>> ListPolicyVersionsAsync(string policyName, IGrainFactory grains)
    {
        var versions = await grains.GetGrain<IPolicyGrain>(policyName).ListVersions();
        return TypedResults.Ok(new ListPolicyVersionsResponse([.. versions.Select(v => new PolicyVersionSummary(v.VersionId, v.IsDefaultVersion, v.CreateDate.ToUnixTimeSeconds()))]));
    }

    private static async Task<Ok<PolicyVersionResponse>> GetPolicyVersionAsync(string policyName, string versionId, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var version = await grains.GetGrain<IPolicyGrain>(policyName).GetVersion(versionId)
            ?? throw ApiException.NotFound($"Version {versionId} of policy {policyName} cannot be found.");
        return TypedResults.Ok(Version(o, version));
    }

    private static async Task<Ok<EmptyResponse>> SetDefaultPolicyVersionAsync(string policyName, string versionId, IGrainFactory grains)
    {
        await grains.GetGrain<IPolicyGrain>(policyName).SetDefaultVersion(versionId);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DeletePolicyVersionAsync(string policyName, string versionId, IGrainFactory grains)
    {
        await grains.GetGrain<IPolicyGrain>(policyName).DeleteVersion(versionId);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> AttachPolicyAsync(string policyName, PolicyTargetBody body, IGrainFactory grains)
    {
        await grains.GetGrain<IPolicyGrain>(policyName).Attach(Target(body));
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DetachPolicyAsync(string policyName, PolicyTargetBody body, IGrainFactory grains)
    {
        await grains.GetGrain<IPolicyGrain>(policyName).Detach(Target(body));
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<ListTargetsForPolicyResponse>> ListTargetsForPolicyAsync(string policyName, IGrainFactory grains) =>
        TypedResults.Ok(new ListTargetsForPolicyResponse([.. await grains.GetGrain<IPolicyGrain>(policyName).ListTargets()]));

    private static async Task<Ok<ListAttachedPoliciesResponse>> ListAttachedPoliciesAsync(string target, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var effective = await grains.GetGrain<IPolicyQueryGrain>(0).Effective(Uri.UnescapeDataString(target), null);
        return TypedResults.Ok(new ListAttachedPoliciesResponse([.. effective.Select(p => new PolicySummary(p.PolicyName, Arn(o, p.PolicyName)))]));
    }

    private static async Task<Ok<GetEffectivePoliciesResponse>> GetEffectivePoliciesAsync(string? thingName, HttpRequest request, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var principal = (await OptionalBody.ReadAsync<EffectivePoliciesBody>(request))?.Principal;
        if (principal is null && thingName is null)
        {
            throw ApiException.Invalid("Give a principal (certificate ARN), a thingName, or both.");
        }

        var effective = await grains.GetGrain<IPolicyQueryGrain>(0).Effective(principal, thingName);
        return TypedResults.Ok(new GetEffectivePoliciesResponse([.. effective.Select(e => new EffectivePolicy(e.PolicyName, Arn(o, e.PolicyName), e.PolicyDocument))]));
    }

    private static string Arn(IOptions<RegistryOptions> options, string policyName) => options.Value.Arn($"policy/{policyName}");

    private static PolicyVersionResponse Version(IOptions<RegistryOptions> o, PolicyVersionInfo v) =>
        new(v.PolicyName, Arn(o, v.PolicyName), v.PolicyDocument, v.VersionId, v.IsDefaultVersion, v.CreateDate.ToUnixTimeSeconds());

    private static string Document(PolicyDocumentBody body) => body.PolicyDocument switch
    {
        { ValueKind: JsonValueKind.String } text => text.GetString()!,
        { ValueKind: JsonValueKind.Object } json => json.GetRawText(),
        _ => throw new ApiException(400, "MalformedPolicyException", "policyDocument is required (the policy as a JSON string)."),
    };

    private static string Target(PolicyTargetBody body) =>
        body.Target is { Length: > 0 } target ? target : throw ApiException.Invalid("target is required (a certificate or thing group ARN).");
}
