using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
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
        var api = endpoints.MapGroup("/api/apikeys").WithTags("API keys").ChangedBy(ApiKeyRoles.Admin);
        api.MapPost("", async (JsonObject body, IGrainFactory grains, HttpContext context) =>
        {
            var made = await grains.GetGrain<IApiKeysGrain>(0).Create(JsonText.Field(body, "name") ?? "", JsonText.Field(body, "role") ?? "");
            AuditApi.Target(context, $"keyId={made.Info.KeyId}");
            var answer = Json(made.Info);
            answer["key"] = made.Key;
            answer["secretAccessKey"] = made.SecretAccessKey;
            return JsonText.Result(answer);
        }).WithName("CreateApiKey");
        api.MapGet("", async (IGrainFactory grains) =>
            JsonText.Result(new JsonObject { ["apiKeys"] = new JsonArray([.. (await grains.GetGrain<IApiKeysGrain>(0).List()).Select(k => (JsonNode)Json(k))]) }))
            .WithName("ListApiKeys");
        api.MapDelete("/{keyId}", async (string keyId, IGrainFactory grains) =>
        {
            await grains.GetGrain<IApiKeysGrain>(0).Delete(keyId);
            return TypedResults.Ok(new { });
        }).WithName("DeleteApiKey");
        return endpoints;
    }

    private static JsonObject Json(ApiKeyInfo key) => new()
    {
        ["keyId"] = key.KeyId,
        ["name"] = key.Name,
        ["role"] = key.Role,
        ["createdAt"] = key.CreatedAt.ToUnixTimeMilliseconds() / 1000.0,
        ["accessKeyId"] = key.AccessKeyId,
    };
}
