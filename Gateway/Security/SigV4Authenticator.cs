using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Security;

/// <summary>
/// AWS Signature Version 4 on the HTTP API, so the AWS SDKs and CLI are clients: the access key id names an API key
/// (<see cref="AccessKeyIds"/>), and the request is authenticated as that key when its signature is the one AWS's
/// algorithm gives with the key's secret access key: in the Authorization header (<c>AWS4-HMAC-SHA256 Credential=…,
/// SignedHeaders=…, Signature=…</c> with <c>X-Amz-Date</c>) or in the query string (presigned: <c>X-Amz-Algorithm</c>,
/// <c>X-Amz-Credential</c>, <c>X-Amz-Date</c>, <c>X-Amz-Expires</c>, <c>X-Amz-SignedHeaders</c>,
/// <c>X-Amz-Signature</c>). Any region; the services of AWS IoT's endpoints; at most 15 minutes between the signing
/// time and this node's clock; the body's SHA-256 checked against the signed one. The signing key (scoped to a day,
/// region and service) comes from the API keys grain and is cached; the secret never leaves that grain. A deleted key
/// is refused at once: its id is looked up through <see cref="ApiKeyAuthenticator"/>, which forgets it on every node.
/// </summary>
internal sealed class SigV4Authenticator(IGrainFactory grains, ApiKeyAuthenticator keys, TimeProvider time)
{
    public const string Algorithm = "AWS4-HMAC-SHA256";

    /// <summary>
    /// The signing names of AWS IoT's endpoints: the control plane (<c>iot</c>; AWS's service model, and so the CLI,
    /// signs it as <c>execute-api</c>), the data plane (<c>iotdata</c>; <c>iotdevicegateway</c> for devices), jobs.
    /// </summary>
    public static readonly IReadOnlySet<string> Services = new HashSet<string>(StringComparer.Ordinal) { "iot", "execute-api", "iotdata", "iotdevicegateway", "iot-jobs-data" };

    private static readonly TimeSpan MaxSkew = TimeSpan.FromMinutes(15);
    private const int MaxCached = 10_000;
    private readonly ConcurrentDictionary<string, byte[]?> _signingKeys = new(StringComparer.Ordinal);

    /// <summary>Whether the request carries a SigV4 signature (header or query string).</summary>
    public static bool IsSigned(HttpRequest request) =>
        request.Headers.Authorization.ToString().StartsWith(Algorithm, StringComparison.Ordinal) || request.Query.ContainsKey("X-Amz-Algorithm");

    /// <summary>The caller (its API key's id and role), or the AWS error that refuses it.</summary>
    public async ValueTask<SigV4Result> AuthenticateAsync(HttpContext context)
    {
        var request = context.Request;
        if (Parse(request) is not { } signed)
        {
            return SigV4Result.Refused(StatusCodes.Status400BadRequest, "IncompleteSignatureException",
                "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters, and an X-Amz-Date header or parameter.");
        }

        if (!DateTimeOffset.TryParseExact(signed.AmzDate, "yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var signedAt))
        {
            return SigV4Result.Refused(StatusCodes.Status400BadRequest, "IncompleteSignatureException", $"Date must be in ISO-8601 'basic format': got '{signed.AmzDate}'.");
        }

        var scope = signed.Credential.Split('/');   // AKID/yyyyMMdd/region/service/aws4_request
        if (scope.Length != 5 || scope[4] != "aws4_request" || scope[1] != signed.AmzDate[..8] || !Services.Contains(scope[3]) || scope[2].Length == 0)
        {
            return SigV4Result.Refused(StatusCodes.Status403Forbidden, "InvalidSignatureException",
                $"Credential should be scoped to a valid date, region and service (one of {string.Join(", ", Services)}) and end in aws4_request: '{signed.Credential}'.");
        }

        var now = time.GetUtcNow();
        var earliest = now - MaxSkew;
        if (signedAt < earliest || signedAt > now + MaxSkew || (signed.ExpiresSeconds is { } expires && signedAt.AddSeconds(expires) < now))
        {
            return SigV4Result.Refused(StatusCodes.Status403Forbidden, "InvalidSignatureException", signed.ExpiresSeconds is null
                ? $"Signature expired: {signed.AmzDate} is now earlier than {Basic(earliest)} ({Basic(now)} - 15 min.)"
                : $"Signature expired: {signed.AmzDate} + {signed.ExpiresSeconds} s is now earlier than {Basic(now)}.");
        }

        var keyId = AccessKeyIds.KeyIdOf(scope[0]);
        var check = keyId is null ? null : await keys.FindAsync(keyId);
        var signingKey = check is null ? null : await SigningKeyAsync(check.KeyId, scope[1], scope[2], scope[3]);
        if (check is null || signingKey is null)
        {
            return SigV4Result.Refused(StatusCodes.Status403Forbidden, "UnrecognizedClientException", "The security token included in the request is invalid.");
        }

        var bodyHash = await BodyHashAsync(request, context.RequestAborted);
        var claimedHash = request.Headers["x-amz-content-sha256"].ToString();
        if (claimedHash.Length > 0 && claimedHash != "UNSIGNED-PAYLOAD" && !string.Equals(claimedHash, bodyHash, StringComparison.OrdinalIgnoreCase))
        {
            return SigV4Result.Refused(StatusCodes.Status403Forbidden, "InvalidSignatureException", "The provided 'x-amz-content-sha256' header does not match what was computed.");
        }

        var canonical = CanonicalRequest(context, signed, claimedHash.Length > 0 ? claimedHash : bodyHash);
        var stringToSign = $"{Algorithm}\n{signed.AmzDate}\n{string.Join('/', scope[1..])}\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonical)))}";
        var expected = HMACSHA256.HashData(signingKey, Encoding.UTF8.GetBytes(stringToSign));
        if (!TryHex(signed.Signature, out var presented) || !CryptographicOperations.FixedTimeEquals(expected, presented))
        {
            return SigV4Result.Refused(StatusCodes.Status403Forbidden, "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.");
        }

        return new SigV4Result(check.KeyId, check.Role, StatusCodes.Status200OK, null, null);
    }

    private async ValueTask<byte[]?> SigningKeyAsync(string keyId, string date, string region, string service)
    {
        var cacheKey = $"{keyId}/{date}/{region}/{service}";
        if (!_signingKeys.TryGetValue(cacheKey, out var key))
        {
            key = await grains.GetGrain<IApiKeysGrain>(0).SigningKey(keyId, date, region, service);
            if (_signingKeys.Count >= MaxCached)
            {
                _signingKeys.Clear();
            }

            _signingKeys[cacheKey] = key;
        }

        return key;
    }

    private sealed record Signed(string Credential, string SignedHeaders, string Signature, string AmzDate, long? ExpiresSeconds, bool InQuery);

    private static Signed? Parse(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        if (header.StartsWith(Algorithm, StringComparison.Ordinal))
        {
            string? credential = null, signedHeaders = null, signature = null;
            foreach (var part in header[Algorithm.Length..].Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
            {
                var eq = part.IndexOf('=');
                if (eq <= 0)
                {
                    continue;
                }

                var value = part[(eq + 1)..];
                switch (part[..eq])
                {
                    case "Credential": credential = value; break;
                    case "SignedHeaders": signedHeaders = value; break;
                    case "Signature": signature = value; break;
                }
            }

            var date = request.Headers["x-amz-date"].ToString();
            return credential is null || signedHeaders is null || signature is null || date.Length == 0
                ? null
                : new Signed(credential, signedHeaders, signature, date, null, InQuery: false);
        }

        var query = request.Query;
        if (query["X-Amz-Algorithm"] != Algorithm || !long.TryParse(query["X-Amz-Expires"], NumberStyles.None, CultureInfo.InvariantCulture, out var expires)
            || expires is < 1 or > 604_800)
        {
            return null;
        }

        string? Value(string name) => query[name] is { Count: 1 } v && v[0]!.Length > 0 ? v[0] : null;
        return Value("X-Amz-Credential") is { } c && Value("X-Amz-SignedHeaders") is { } h && Value("X-Amz-Signature") is { } s && Value("X-Amz-Date") is { } d
            ? new Signed(c, h, s, d, expires, InQuery: true)
            : null;
    }

    /// <summary>AWS's canonical request: method, path, query, the signed headers, their names, the payload's hash.</summary>
    private static string CanonicalRequest(HttpContext context, Signed signed, string payloadHash)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "/";
        var q = raw.IndexOf('?');
        var (rawPath, rawQuery) = q < 0 ? (raw, "") : (raw[..q], raw[(q + 1)..]);

        var builder = new StringBuilder(512);
        builder.Append(context.Request.Method).Append('\n');
        builder.Append(CanonicalPath(rawPath)).Append('\n');
        builder.Append(CanonicalQuery(rawQuery, signed.InQuery)).Append('\n');
        var names = signed.SignedHeaders.Split(';');
        foreach (var name in names)
        {
            var values = context.Request.Headers[name];
            builder.Append(name).Append(':').Append(string.Join(',', values.Select(v => CollapseSpaces(v ?? "")))).Append('\n');
        }

        builder.Append('\n').Append(signed.SignedHeaders).Append('\n').Append(payloadHash);
        return builder.ToString();
    }

    /// <summary>The path as sent, without empty and dot segments, each segment URI-encoded again (AWS, all services but S3).</summary>
    private static string CanonicalPath(string rawPath)
    {
        var segments = new List<string>();
        foreach (var segment in rawPath.Split('/'))
        {
            if (segment.Length == 0 || segment == ".")
            {
                continue;
            }

            if (segment == "..")
            {
                if (segments.Count > 0)
                {
                    segments.RemoveAt(segments.Count - 1);
                }

                continue;
            }

            segments.Add(Encode(segment));
        }

        var path = "/" + string.Join('/', segments);
        return segments.Count > 0 && rawPath.EndsWith('/') ? path + "/" : path;
    }

    /// <summary>Parameters decoded, encoded AWS's way and sorted by name then value; the signature itself left out.</summary>
    private static string CanonicalQuery(string rawQuery, bool presigned)
    {
        var pairs = new List<(string Name, string Value)>();
        foreach (var part in rawQuery.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = part.IndexOf('=');
            var name = Uri.UnescapeDataString(eq < 0 ? part : part[..eq]);
            var value = eq < 0 ? "" : Uri.UnescapeDataString(part[(eq + 1)..]);
            if (presigned && name == "X-Amz-Signature")
            {
                continue;
            }

            pairs.Add((Encode(name), Encode(value)));
        }

        pairs.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name) is var byName and not 0 ? byName : string.CompareOrdinal(a.Value, b.Value));
        return string.Join('&', pairs.Select(p => $"{p.Name}={p.Value}"));
    }

    /// <summary>RFC 3986 encoding as AWS specifies it: everything but A-Z a-z 0-9 - _ . ~ as %XX of its UTF-8 bytes.</summary>
    private static string Encode(string value)
    {
        var builder = new StringBuilder(value.Length + 8);
        foreach (var b in Encoding.UTF8.GetBytes(value))
        {
            if (b is >= (byte)'A' and <= (byte)'Z' or >= (byte)'a' and <= (byte)'z' or >= (byte)'0' and <= (byte)'9' or (byte)'-' or (byte)'_' or (byte)'.' or (byte)'~')
            {
                builder.Append((char)b);
            }
            else
            {
                builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
            }
        }

        return builder.ToString();
    }

    private static string CollapseSpaces(string value) => string.Join(' ', value.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));

    /// <summary>The body's SHA-256 (hex); the body stays readable for the endpoint.</summary>
    private static async Task<string> BodyHashAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        request.EnableBuffering();
        var hash = await SHA256.HashDataAsync(request.Body, cancellationToken);
        request.Body.Position = 0;
        return Hex(hash);
    }

    private static string Hex(byte[] bytes) => Convert.ToHexStringLower(bytes);

    private static bool TryHex(string hex, out byte[] bytes)
    {
        bytes = [];
        if (hex.Length != 64)
        {
            return false;
        }

        try
        {
            bytes = Convert.FromHexString(hex);
            return true;
        }
        catch (FormatException)
        {
            return false;
        }
    }

    private static string Basic(DateTimeOffset at) => at.UtcDateTime.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture);
}

/// <summary>A SigV4 check's outcome: the caller's key id and role, or the status, AWS error name and message refusing it.</summary>
internal sealed record SigV4Result(string? KeyId, string? Role, int Status, string? Code, string? Message)
{
    public static SigV4Result Refused(int status, string code, string message) => new(null, null, status, code, message);
}
