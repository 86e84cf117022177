namespace OrleansIot.Gateway.Http;

/// <summary>How the API writes values AWS writes as text.</summary>
public static class JsonText
{
    /// <summary>An instant as ISO 8601 UTC with milliseconds (<c>2026-11-27T10:00:00.000Z</c>).</summary>
    public static string Instant(DateTimeOffset instant) =>
        instant.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", System.Globalization.CultureInfo.InvariantCulture);
}
