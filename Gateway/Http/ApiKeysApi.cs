using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Backend callers' API keys (admin only): <c>POST /api/apikeys</c> <c>{"name","role"}</c> answers the key once (the
/// Bearer <c>key</c>, and the same key as an AWS credential pair: <c>accessKeyId</c>, <c>secretAccessKey</c>),
/// <c>GET /api/apikeys</c> lists them (never secrets), <c>DELETE /api/apikeys/{keyId}</c>.
/// </summary>
public static class ApiKeysApi
{
    public static IEndpointRouteBuilder MapApiKeysApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/apikeys").WithTags("API keys").ChangedBy(ApiKeyRoles.Admin);
        api.MapPost("", CreateAsync).WithName("CreateApiKey");
        api.MapGet("", ListAsync).WithName("ListApiKeys");
        api.MapDelete("/{keyId}", DeleteAsync).WithName("DeleteApiKey");
        return endpoints;
    }

    public sealed record CreateApiKeyBody(string? Name, string? Role);

    /// <summary>An API key as listed: never a secret.</summary>
    public sealed record ApiKeyDescription(string KeyId, string Name, string Role, double CreatedAt, string? AccessKeyId);

    /// <summary>A key just made: its secrets, shown this once.</summary>
    public sealed record CreateApiKeyResponse(string KeyId, string Name, string Role, double CreatedAt, string? AccessKeyId, string Key, string SecretAccessKey);

    public sealed record ListApiKeysResponse(IReadOnlyList<ApiKeyDescription> ApiKeys);

    private static async Task<Ok<CreateApiKeyResponse>> CreateAsync(CreateApiKeyBody body, IGrainFactory grains, HttpContext context)
    {
        var made = await grains.GetGrain<IApiKeysGrain>(0).Create(body.Name ?? "", body.Role ?? "");
        AuditApi.Target(context, $"keyId={made.Info.KeyId}");
        var k = made.Info;
        return TypedResults.Ok(new CreateApiKeyResponse(k.KeyId, k.Name, k.Role, Seconds(k.CreatedAt), k.AccessKeyId, made.Key, made.SecretAccessKey));
    }

    private static async Task<Ok<ListApiKeysResponse>> ListAsync(IGrainFactory grains) =>
        TypedResults.Ok(new ListApiKeysResponse([.. (await grains.GetGrain<IApiKeysGrain>(0).List())
            .Select(k => new ApiKeyDescription(k.KeyId, k.Name, k.Role, Seconds(k.CreatedAt), k.AccessKeyId))]));

    private static async Task<Ok<EmptyResponse>> DeleteAsync(string keyId, IGrainFactory grains)
    {
        await grains.GetGrain<IApiKeysGrain>(0).Delete(keyId);
        return EmptyResponse.Ok;
    }

    private static double Seconds(DateTimeOffset at) => at.ToUnixTimeMilliseconds() / 1000.0;
}
