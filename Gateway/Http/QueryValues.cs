using System.Globalization;
using Microsoft.AspNetCore.Http;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Gateway.Http;

/// <summary>Query-string values of the control plane, checked once, refused as InvalidRequestException naming the parameter.</summary>
public static class QueryValues
{
    /// <summary>A whole number from <paramref name="min"/> to <paramref name="max"/>, or <paramref name="fallback"/> when absent.</summary>
    public static int WholeNumber(IQueryCollection query, string name, int fallback, int min, int max)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (!query.TryGetValue(name, out var text))
        {
            return fallback;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max
            ? n
            : throw ApiException.Invalid($"{name} must be a whole number from {min} to {max}.");
    }

    /// <summary>An instant, ISO 8601 or Unix milliseconds, or <paramref name="fallback"/> when absent.</summary>
    public static DateTimeOffset Instant(IQueryCollection query, string name, DateTimeOffset fallback)
    {
        ArgumentNullException.ThrowIfNull(query);
        if (!query.TryGetValue(name, out var value))
        {
            return fallback;
        }

        var text = value.ToString();
        if (long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var ms))
        {
            return DateTimeOffset.FromUnixTimeMilliseconds(Math.Min(ms, 253402300799999));
        }

        return DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var instant)
            ? instant
            : throw ApiException.Invalid($"{name} '{text}' is neither ISO 8601 nor Unix milliseconds.");
    }
}
