using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions.ApiKeys;
using OrleansIot.Grains.Abstractions.Shadows;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// The shadow data plane as AWS's (<c>GetThingShadow</c>, <c>UpdateThingShadow</c>, <c>DeleteThingShadow</c>,
/// <c>ListNamedShadowsForThing</c>): AWS paths and documents; errors as problem+json carrying AWS's exception name
/// (also in <c>x-amzn-ErrorType</c>, as on every error) and AWS's message.
/// </summary>
public static class ShadowApi
{
    /// <summary>Largest request body read; a shadow state is at most 8 KB, so anything near this is refused anyway.</summary>
    private const int MaxBodyBytes = 128 * 1024;

    public static IEndpointRouteBuilder MapShadowApi(this IEndpointRouteBuilder endpoints)
    {
        var shadows = endpoints.MapGroup("/things/{thingName}/shadow").WithTags("Shadows").ChangedBy(ApiKeyRoles.Operator);
        shadows.MapGet("", GetAsync).WithName("GetThingShadow").WithMetadata(DeviceMay("iot:GetThingShadow"));
        shadows.MapPost("", UpdateAsync).WithName("UpdateThingShadow").WithMetadata(DeviceMay("iot:UpdateThingShadow"));
        shadows.MapDelete("", DeleteAsync).WithName("DeleteThingShadow").WithMetadata(DeviceMay("iot:DeleteThingShadow"));
        endpoints.MapGet("/api/things/shadow/ListNamedShadowsForThing/{thingName}", ListAsync).WithTags("Shadows").WithName("ListNamedShadowsForThing")
            .ChangedBy(ApiKeyRoles.Operator);
        return endpoints;
    }

    /// <summary>A device may make this call on <c>thing/{thingName}</c> when its policies allow the action.</summary>
    private static DeviceAccess DeviceMay(string action) =>
        new(context => [(action, $"thing/{context.Request.RouteValues["thingName"] as string ?? ""}")]);

    private static async Task<IResult> GetAsync(string thingName, string? name, IGrainFactory grains) =>
        await CallAsync(thingName, name, [], (thing, request) => thing.GetShadow(request), grains);

    private static async Task<IResult> DeleteAsync(string thingName, string? name, IGrainFactory grains) =>
        await CallAsync(thingName, name, [], (thing, request) => thing.DeleteShadow(request), grains);

    private static async Task<IResult> UpdateAsync(string thingName, string? name, HttpRequest http, IGrainFactory grains)
    {
        if (http.ContentLength > MaxBodyBytes)
        {
            return Error(413, "The payload exceeds the maximum size allowed");
        }

        using var body = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await http.Body.ReadAsync(buffer, http.HttpContext.RequestAborted)) > 0)
        {
            if (body.Length + read > MaxBodyBytes)
            {
                return Error(413, "The payload exceeds the maximum size allowed");
            }

            body.Write(buffer, 0, read);
        }

        return await CallAsync(thingName, name, body.ToArray(), (thing, request) => thing.UpdateShadow(request), grains);
    }

    private static async Task<IResult> ListAsync(string thingName, string? nextToken, int? pageSize, IGrainFactory grains, TimeProvider time)
    {
        if (!ThingNames.IsValidThingName(thingName))
        {
            return Error(400, "Invalid thing name");
        }

        if (pageSize is < 1 or > 100)
        {
            return Error(400, "pageSize must be between 1 and 100");
        }

        var page = await grains.GetGrain<IThingGrain>(thingName).ListNamedShadows(nextToken, pageSize ?? 100);
        var result = new Dictionary<string, object?>
        {
            ["results"] = page.Results,
            ["timestamp"] = time.GetUtcNow().ToUnixTimeSeconds(),
        };
        if (page.NextToken is not null)
        {
            result["nextToken"] = page.NextToken;
        }

        return TypedResults.Json(result);
    }

    private static async Task<IResult> CallAsync(
        string thingName,
        string? shadowName,
        byte[] payload,
        Func<IThingGrain, ShadowRequest, Task<ShadowResponse>> call,
        IGrainFactory grains)
    {
        if (!ThingNames.IsValidThingName(thingName))
        {
            return Error(400, "Invalid thing name");
        }

        if (shadowName is not null && !ThingNames.IsValidShadowName(shadowName))
        {
            return Error(400, "Invalid shadow name");
        }

        var response = await call(grains.GetGrain<IThingGrain>(thingName), new ShadowRequest(shadowName, payload, ShadowChannel.Api));
        if (response.IsAccepted)
        {
            return TypedResults.Bytes(response.Document, "application/json");
        }

        using var error = System.Text.Json.JsonDocument.Parse(response.Document);
        return Error(response.Code, error.RootElement.GetProperty("message").GetString() ?? "");
    }

    private static ProblemHttpResult Error(int status, string message)
    {
        var code = status switch
        {
            400 => "InvalidRequestException",
            401 => "UnauthorizedException",
            403 => "ForbiddenException",
            404 => "ResourceNotFoundException",
            409 => "ConflictException",
            413 => "RequestEntityTooLargeException",
            415 => "UnsupportedDocumentEncodingException",
            429 => "ThrottlingException",
            _ => "InternalFailureException",
        };
        return Problems.Create(status, code, message);
    }
}
