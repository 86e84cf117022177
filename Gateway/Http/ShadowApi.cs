using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions;
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
        shadows.MapGet("", GetAsync).WithName("GetThingShadow").WithMetadata(DeviceAccess.OnThing("iot:GetThingShadow")).Produces<JsonObject>(contentType: "application/json");
        shadows.MapPost("", UpdateAsync).WithName("UpdateThingShadow").WithMetadata(DeviceAccess.OnThing("iot:UpdateThingShadow"))
            .WithMetadata(new OptionalBody(typeof(JsonObject), Required: true)).Produces<JsonObject>(contentType: "application/json");
        shadows.MapDelete("", DeleteAsync).WithName("DeleteThingShadow").WithMetadata(DeviceAccess.OnThing("iot:DeleteThingShadow")).Produces<JsonObject>(contentType: "application/json");
        return endpoints;
    }

    /// <summary>The shadow call that lives in the control plane (<c>/api/things/shadow/ListNamedShadowsForThing/{thingName}</c>).</summary>
    public static IEndpointRouteBuilder MapNamedShadowsApi(this IEndpointRouteBuilder api)
    {
        api.MapGet("/things/shadow/ListNamedShadowsForThing/{thingName}", ListAsync).WithTags("Shadows").WithName("ListNamedShadowsForThing").ChangedBy(ApiKeyRoles.Operator);
        api.MapGet("/things/{thingName}/shadow/changes", WatchAsync).WithTags("Shadows").WithName("WatchThingShadow").ChangedBy(ApiKeyRoles.Operator)
            .Produces<string>(StatusCodes.Status200OK, "text/event-stream");
        return api;
    }


    /// <summary>AWS's ListNamedShadowsForThing answer: the names, a page token when more follow, the time.</summary>
    public sealed record ListNamedShadowsResponse(
        IReadOnlyList<string> Results,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? NextToken,
        long Timestamp);

    // The shadow documents are the grain's bytes, passed through as AWS's JSON (described as objects in OpenAPI).
    private static async Task<FileContentHttpResult> GetAsync(string thingName, string? name, IGrainFactory grains) =>
        await CallAsync(thingName, name, [], (thing, request) => thing.GetShadow(request), grains);

    private static async Task<FileContentHttpResult> DeleteAsync(string thingName, string? name, IGrainFactory grains) =>
        await CallAsync(thingName, name, [], (thing, request) => thing.DeleteShadow(request), grains);

    private static async Task<FileContentHttpResult> UpdateAsync(string thingName, string? name, HttpRequest http, IGrainFactory grains)
    {
        if (http.ContentLength > MaxBodyBytes)
        {
            throw Error(413, "The payload exceeds the maximum size allowed");
        }

        using var body = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await http.Body.ReadAsync(buffer, http.HttpContext.RequestAborted)) > 0)
        {
            if (body.Length + read > MaxBodyBytes)
            {
                throw Error(413, "The payload exceeds the maximum size allowed");
            }

            body.Write(buffer, 0, read);
        }

        return await CallAsync(thingName, name, body.ToArray(), (thing, request) => thing.UpdateShadow(request), grains);
    }

    /// <summary>
    /// A shadow's documents as they change, as server-sent events (not AWS's; the console's live view): an event
    /// <c>shadow</c> with the full document (as GetThingShadow answers it) now and after every change, <c>none</c>
    /// while there is no shadow, and a comment every 25 s that keeps proxies from closing the stream. Watching is
    /// not a shadow operation: it is not metered.
    /// </summary>
    private static async Task WatchAsync(string thingName, string? name, HttpContext http, IGrainFactory grains, TimeProvider time)
    {
        if (!ThingNames.IsValidThingName(thingName) || (name is not null && !ThingNames.IsValidShadowName(name)))
        {
            throw Error(400, "Invalid thing or shadow name");
        }

        var response = http.Response;
        response.ContentType = "text/event-stream";
        response.Headers.CacheControl = "no-cache";
        var thing = grains.Reference<IThingGrain>(thingName);
        var cancel = http.RequestAborted;
        long after = -1;
        var announcedNone = false;
        try
        {
            while (!cancel.IsCancellationRequested)
            {
                var answer = await thing.WaitForShadowChange(name, after, TimeSpan.FromSeconds(25)).WaitAsync(cancel);
                if (answer.Code == 200)
                {
                    using (var document = System.Text.Json.JsonDocument.Parse(answer.Document))
                    {
                        after = document.RootElement.GetProperty("version").GetInt64();
                    }

                    announcedNone = false;
                    await response.WriteAsync($"event: shadow\ndata: {answer.DocumentText}\n\n", cancel);
                }
                else if (answer.Code == 404)
                {
                    if (!announcedNone)
                    {
                        announcedNone = true;
                        await response.WriteAsync("event: none\ndata: {}\n\n", cancel);
                    }

                    // A deleted shadow answers at once (its version is not in the answer): look again a second later,
                    // not in a loop.
                    await Task.Delay(TimeSpan.FromSeconds(1), time, cancel);
                }
                else
                {
                    await response.WriteAsync(": still watching\n\n", cancel);
                }

                await response.Body.FlushAsync(cancel);
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // The watcher went away.
        }
    }

    private static async Task<Ok<ListNamedShadowsResponse>> ListAsync(string thingName, string? nextToken, int? pageSize, IGrainFactory grains, TimeProvider time)
    {
        if (!ThingNames.IsValidThingName(thingName))
        {
            throw Error(400, "Invalid thing name");
        }

        if (pageSize is < 1 or > 100)
        {
            throw Error(400, "pageSize must be between 1 and 100");
        }

        var page = await grains.Reference<IThingGrain>(thingName).ListNamedShadows(nextToken, pageSize ?? 100);
        return TypedResults.Ok(new ListNamedShadowsResponse(page.Results, page.NextToken, time.GetUtcNow().ToUnixTimeSeconds()));
    }

    private static async Task<FileContentHttpResult> CallAsync(
        string thingName,
        string? shadowName,
        byte[] payload,
        Func<IThingGrain, ShadowRequest, Task<ShadowResponse>> call,
        IGrainFactory grains)
    {
        if (!ThingNames.IsValidThingName(thingName))
        {
            throw Error(400, "Invalid thing name");
        }

        if (shadowName is not null && !ThingNames.IsValidShadowName(shadowName))
        {
            throw Error(400, "Invalid shadow name");
        }

        var response = await call(grains.Reference<IThingGrain>(thingName), new ShadowRequest(shadowName, payload, ShadowChannel.Api));
        if (response.IsAccepted)
        {
            return TypedResults.Bytes(response.Document, "application/json");
        }

        using var error = System.Text.Json.JsonDocument.Parse(response.Document);
        throw Error(response.Code, error.RootElement.GetProperty("message").GetString() ?? "");
    }

    /// <summary>The shadow service's error (an HTTP status and AWS's message) with AWS's exception name for that status.</summary>
    private static ApiException Error(int status, string message)
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
        return new ApiException(status, code, message);
    }
}
