using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.RegularExpressions;
using Microsoft.Extensions.Options;

namespace OrleansIot.Grains.Abstractions.Artifacts;

/// <summary>
/// Signed download URLs: <c>{BaseUrl}/artifacts/{id}?expires={unix seconds}&amp;signature={hex}</c>, the signature an
/// HMAC-SHA256 of the id and the expiry under the cluster's key (<see cref="IArtifactKeyGrain"/>), so any node checks
/// a URL any node made, and changing the id or the expiry breaks it. Also expands <c>${iot:artifact-url:&lt;id&gt;}</c>
/// in job documents (our form of AWS's presigned-URL placeholder).
/// </summary>
public sealed partial class ArtifactUrls(IGrainFactory grains, IOptions<ArtifactOptions> options, TimeProvider time)
{
    /// <summary>Shortest and longest lifetime of a URL (AWS's presigned URL bounds).</summary>
    public const int MinLifetimeSeconds = 60, MaxLifetimeSeconds = 3600;

    /// <summary>At most this many placeholders in one document (AWS: 10 substitutions).</summary>
    public const int MaxPlaceholders = 10;

    private byte[]? _key;

    /// <summary>Whether the text is an artifact id: 1-64 of <c>[a-zA-Z0-9_-]</c>, as a job id.</summary>
    public static bool IsArtifactId(string text) => ArtifactId().IsMatch(text);

    /// <summary>The artifact ids a document's placeholders name, in order (duplicates kept).</summary>
    public static IReadOnlyList<string> Referenced(string document) =>
        [.. Placeholder().Matches(document).Select(m => m.Groups[1].Value)];

    /// <summary>A URL for the artifact valid for <paramref name="lifetimeSeconds"/> from now.</summary>
    public async Task<(string Url, DateTimeOffset ExpiresAt)> SignAsync(string artifactId, int lifetimeSeconds)
    {
        var expires = time.GetUtcNow().AddSeconds(Math.Clamp(lifetimeSeconds, MinLifetimeSeconds, MaxLifetimeSeconds));
        var seconds = expires.ToUnixTimeSeconds();
        var signature = Convert.ToHexStringLower(HMACSHA256.HashData(await KeyAsync(), Message(artifactId, seconds)));
        var baseUrl = (options.Value.BaseUrl ?? "http://localhost:8080").TrimEnd('/');
        return ($"{baseUrl}/artifacts/{Uri.EscapeDataString(artifactId)}?expires={seconds}&signature={signature}", DateTimeOffset.FromUnixTimeSeconds(seconds));
    }

    /// <summary>Replaces each <c>${iot:artifact-url:&lt;id&gt;}</c> by a fresh signed URL (JSON-escaped, since it sits in a JSON string).</summary>
    public async Task<string> ExpandAsync(string document, int? lifetimeSeconds)
    {
        var matches = Placeholder().Matches(document);
        if (matches.Count == 0)
        {
            return document;
        }

        var text = new StringBuilder(document.Length + (matches.Count * 160));
        var at = 0;
        foreach (Match match in matches)
        {
            var (url, _) = await SignAsync(match.Groups[1].Value, lifetimeSeconds ?? options.Value.DefaultUrlLifetimeSeconds);
            text.Append(document, at, match.Index - at).Append(System.Text.Json.JsonEncodedText.Encode(url, System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping).Value);
            at = match.Index + match.Length;
        }

        return text.Append(document, at, document.Length - at).ToString();
    }

    /// <summary>Whether the signature is this cluster's for the id and expiry, and the expiry has not passed.</summary>
    public async Task<bool> VerifyAsync(string artifactId, string? expires, string? signature)
    {
        if (!long.TryParse(expires, NumberStyles.None, CultureInfo.InvariantCulture, out var seconds) || signature is not { Length: 64 })
        {
            return false;
        }

        byte[] given;
        try
        {
            given = Convert.FromHexString(signature);
        }
        catch (FormatException)
        {
            return false;
        }

        var expected = HMACSHA256.HashData(await KeyAsync(), Message(artifactId, seconds));
        return CryptographicOperations.FixedTimeEquals(given, expected) && time.GetUtcNow().ToUnixTimeSeconds() <= seconds;
    }

    private static byte[] Message(string artifactId, long expires) => Encoding.UTF8.GetBytes($"artifact\n{artifactId}\n{expires.ToString(CultureInfo.InvariantCulture)}");

    private async Task<byte[]> KeyAsync() => _key ??= await grains.GetGrain<IArtifactKeyGrain>(0).SigningKey();

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$", RegexOptions.CultureInvariant)]
    private static partial Regex ArtifactId();

    /// <summary>The placeholder, naming an artifact id.</summary>
    [GeneratedRegex(@"\$\{iot:artifact-url:([a-zA-Z0-9_-]{1,64})\}", RegexOptions.CultureInvariant)]
    private static partial Regex Placeholder();
}
