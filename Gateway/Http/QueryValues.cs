using System.Globalization;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Query-string values, bound one way: each endpoint takes its parameters as a request record (<c>[AsParameters]</c>)
/// of nullable numbers and strings (a number that does not parse is a binding failure, answered 400
/// <c>InvalidRequestException</c> naming the parameter); ranges and instants are checked here, refused naming the parameter.
/// </summary>
public static class QueryValues
{
    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, or <paramref name="fallback"/> when absent.</summary>
    public static int Range(int? value, string name, int fallback, int min, int max) =>
        value is null ? fallback
        : value >= min && value <= max ? value.Value
        : throw ApiException.Invalid($"{name} must be a whole number from {min} to {max}.");

    /// <summary>An optional text parameter: null when absent or empty.</summary>
    public static string? Optional(string? value) => string.IsNullOrEmpty(value) ? null : value;

    /// <summary>An instant given as ISO 8601 or Unix milliseconds, or <paramref name="fallback"/> when absent.</summary>
    public static DateTimeOffset Instant(string? text, string name, DateTimeOffset fallback)
    {
        if (string.IsNullOrEmpty(text))
        {
            return fallback;
        }

        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            return DateTimeOffset.FromUnixTimeMilliseconds(Math.Min(ms, 253402300799999));
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var instant)
            ? instant
            : throw ApiException.Invalid($"{name} '{text}' is neither ISO 8601 nor Unix milliseconds.");
    }
}
