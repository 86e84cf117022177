using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;

namespace OrleansIot.Gateway.Http;

/// <summary>JSON answers written as people and AWS write them: quotes, '+' and '&lt;' as themselves, not <c>\u0022</c>.</summary>
public static class JsonText
{
    private static readonly JsonSerializerOptions Options = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>An application/json result of the node.</summary>
    public static IResult Result(JsonNode node) => TypedResults.Text(node.ToJsonString(Options), "application/json");

    /// <summary>A request body's string field, or null when it is missing or not a string.</summary>
    public static string? Field(JsonObject? body, string name) => body?[name] is JsonValue v && v.TryGetValue<string>(out var text) ? text : null;

    /// <summary>A request body's non-empty string field; <c>InvalidRequestException</c> saying <paramref name="what"/> otherwise.</summary>
    public static string Required(JsonObject body, string name, string what) =>
        Field(body, name) is { Length: > 0 } text ? text : throw Grains.Abstractions.ApiException.Invalid($"{name} is required ({what}).");

    /// <summary>A request body's boolean field, or null.</summary>
    public static bool? Flag(JsonObject body, string name) => body[name] is JsonValue v && v.TryGetValue<bool>(out var value) ? value : null;

    /// <summary>An instant as ISO 8601 UTC with milliseconds (<c>2026-11-27T10:00:00.000Z</c>).</summary>
    public static string Instant(DateTimeOffset instant) =>
        instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
