using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using Microsoft.Net.Http.Headers;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.ApiKeys;
using OrleansIot.Grains.Abstractions.Artifacts;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Artifacts (firmware and other files devices download): <c>POST /api/artifacts</c> streams the body into the store
/// (never whole in memory; SHA-256 computed on the way; refused past <c>Iot:Artifacts:MaxBytes</c>), list, describe,
/// delete (refused while a job in progress refers to it), and <c>POST /api/artifacts/{id}/url</c> for a signed URL.
/// Devices download only through signed URLs (<c>GET /artifacts/{id}?expires=…&amp;signature=…</c>), served by every
/// node with <c>ETag</c> and single <c>Range</c> requests so an interrupted download resumes.
/// </summary>
public static class ArtifactsApi
{
    public static IEndpointRouteBuilder MapArtifactsApi(this IEndpointRouteBuilder endpoints)
    {
        var artifacts = endpoints.MapGroup("/artifacts").WithTags("Artifacts").ChangedBy(ApiKeyRoles.Operator);
        artifacts.MapPost("", UploadAsync).WithName("CreateArtifact").WithMetadata(new OptionalBody(typeof(Stream), "application/octet-stream", Required: true));
        artifacts.MapGet("", ListAsync).WithName("ListArtifacts");
        artifacts.MapGet("/{artifactId}", DescribeAsync).WithName("DescribeArtifact");
        artifacts.MapDelete("/{artifactId}", DeleteAsync).WithName("DeleteArtifact");
        artifacts.MapPost("/{artifactId}/url", SignAsync).WithName("CreateArtifactUrl").ReadOnly();
        return endpoints;
    }

    /// <summary>The download route: anonymous, since the signature is the authorization.</summary>
    public static IEndpointRouteBuilder MapArtifactDownloads(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapMethods("/artifacts/{artifactId}", ["GET", "HEAD"], DownloadAsync).WithTags("Artifacts").WithName("DownloadArtifact")
            .AllowAnonymous().NotAudited().Produces<Stream>(contentType: "application/octet-stream");
        return endpoints;
    }

    public sealed record UploadRequest(string? Name, string? ArtifactId);

    public sealed record ListArtifactsRequest(string? NextToken, int? MaxResults);

    public sealed record SignRequest(int? ExpiresInSec);

    public sealed record ArtifactBody(string ArtifactId, string Name, long Size, string Sha256, string ContentType, long CreatedAt, long Downloads);

    public sealed record ListArtifactsResponse(IReadOnlyList<ArtifactBody> Artifacts, string? NextToken);

    public sealed record ArtifactUrlResponse(string Url, long ExpiresAt);

    private static async Task<Ok<ArtifactBody>> UploadAsync(
        [AsParameters] UploadRequest request, HttpRequest http, IGrainFactory grains, IArtifactBlobStore store, IOptions<ArtifactOptions> options)
    {
        var max = options.Value.MaxBytes;
        if (http.ContentLength > max)
        {
            throw TooLarge(max);
        }

        var id = QueryValues.Optional(request.ArtifactId) ?? Guid.NewGuid().ToString("N");
        if (!ArtifactUrls.IsArtifactId(id))
        {
            throw ApiException.Invalid("artifactId must be 1-64 characters of [a-zA-Z0-9_-].");
        }

        var name = QueryValues.Optional(request.Name) ?? id;
        if (name.Length > 256 || name.Any(char.IsControl))
        {
            throw ApiException.Invalid("name must be at most 256 characters without control characters.");
        }

        var artifact = grains.GetGrain<IArtifactGrain>(id);
        if (await artifact.Describe() is not null)
        {
            throw ApiException.AlreadyExists($"Artifact {id} already exists.");
        }

        // Kestrel's own request limit (30 MB by default) would cut firmware short: ours applies instead.
        if (http.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = max + 1;
        }

        (long Size, string Sha256) stored;
        try
        {
            stored = await store.WriteAsync(id, http.Body, max, http.HttpContext.RequestAborted);
        }
        catch (ArtifactTooLargeException)
        {
            throw TooLarge(max);
        }

        var contentType = string.IsNullOrEmpty(http.ContentType) ? "application/octet-stream" : http.ContentType;
        try
        {
            return TypedResults.Ok(Body(await artifact.Create(name, stored.Size, stored.Sha256, contentType)));
        }
        catch
        {
            await store.DeleteAsync(id, CancellationToken.None);   // no bytes without metadata
            throw;
        }
    }

    private static async Task<Ok<ListArtifactsResponse>> ListAsync([AsParameters] ListArtifactsRequest request, IGrainFactory grains)
    {
        var (names, next) = await grains.GetGrain<IArtifactListGrain>(0).Page(QueryValues.Optional(request.NextToken), QueryValues.Range(request.MaxResults, "maxResults", 100, 1, 250));
        var artifacts = new List<ArtifactBody>();
        foreach (var name in names)
        {
            if (await grains.GetGrain<IArtifactGrain>(name).Describe() is { } artifact)
            {
                artifacts.Add(Body(artifact));
            }
        }

        return TypedResults.Ok(new ListArtifactsResponse(artifacts, next));
    }

    private static async Task<Ok<ArtifactBody>> DescribeAsync(string artifactId, IGrainFactory grains) =>
        TypedResults.Ok(Body(await grains.GetGrain<IArtifactGrain>(artifactId).Describe() ?? throw NotFound(artifactId)));

    private static async Task<Ok<EmptyResponse>> DeleteAsync(string artifactId, IGrainFactory grains, IArtifactBlobStore store)
    {
        await grains.GetGrain<IArtifactGrain>(artifactId).Delete();
        await store.DeleteAsync(artifactId, CancellationToken.None);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<ArtifactUrlResponse>> SignAsync(string artifactId, [AsParameters] SignRequest request, IGrainFactory grains, ArtifactUrls urls)
    {
        _ = await grains.GetGrain<IArtifactGrain>(artifactId).Describe() ?? throw NotFound(artifactId);
        var lifetime = QueryValues.Range(request.ExpiresInSec, "expiresInSec", 3600, ArtifactUrls.MinLifetimeSeconds, ArtifactUrls.MaxLifetimeSeconds);
        var (url, expires) = await urls.SignAsync(artifactId, lifetime);
        return TypedResults.Ok(new ArtifactUrlResponse(url, expires.ToUnixTimeSeconds()));
    }

    /// <summary>A signed download: 403 when expired or tampered; ETag (the SHA-256) and one byte range per request.</summary>
    private static async Task DownloadAsync(string artifactId, string? expires, string? signature, HttpContext http, IGrainFactory grains, IArtifactBlobStore store, ArtifactUrls urls)
    {
        if (!await urls.VerifyAsync(artifactId, expires, signature))
        {
            await Problems.Create(StatusCodes.Status403Forbidden, "AccessDeniedException", "The download URL has expired or its signature does not match.").ExecuteAsync(http);
            return;
        }

        var artifact = grains.GetGrain<IArtifactGrain>(artifactId);
        if (await artifact.Describe() is not { } record)
        {
            await Problems.Create(StatusCodes.Status404NotFound, "ResourceNotFoundException", $"Artifact {artifactId} cannot be found.").ExecuteAsync(http);
            return;
        }

        var response = http.Response;
        var etag = $"\"{record.Sha256}\"";
        response.Headers.ETag = etag;
        response.Headers.AcceptRanges = "bytes";
        response.Headers.CacheControl = "private, no-transform";
        if (http.Request.Headers.IfNoneMatch.Contains(etag))
        {
            response.StatusCode = StatusCodes.Status304NotModified;
            return;
        }

        var (offset, length) = (0L, record.Size);
        var range = http.Request.Headers.Range.ToString();
        var ifRange = http.Request.Headers.IfRange.ToString();
        if (range.Length > 0 && (ifRange.Length == 0 || ifRange == etag))
        {
            if (!TryRange(range, record.Size, out offset, out length))
            {
                response.StatusCode = StatusCodes.Status416RangeNotSatisfiable;
                response.Headers.ContentRange = $"bytes */{record.Size}";
                return;
            }

            response.StatusCode = StatusCodes.Status206PartialContent;
            response.Headers.ContentRange = $"bytes {offset}-{offset + length - 1}/{record.Size}";
        }

        response.ContentType = record.ContentType;
        response.ContentLength = length;
        if (HttpMethods.IsHead(http.Request.Method))
        {
            return;
        }

        try
        {
            await store.ReadAsync(artifactId, offset, length, response.Body, http.RequestAborted);
            if (offset == 0)
            {
                await artifact.CountDownload();   // a download that started at the beginning; resumed ranges are the same download
            }
        }
        catch (FileNotFoundException) when (!response.HasStarted)
        {
            // Described but not here: the embedded store is this machine's directory (a cluster on several machines
            // needs PostgreSQL mode, or Iot:Artifacts:Directory on a shared file system).
            response.Headers.ETag = default;
            response.Headers.ContentRange = default;
            response.ContentLength = null;
            await Problems.Create(StatusCodes.Status503ServiceUnavailable, "ServiceUnavailableException",
                $"Artifact {artifactId}'s bytes are not in this node's store (Iot:Artifacts:Directory); in a cluster of several machines, use PostgreSQL mode or a shared directory.").ExecuteAsync(http);
        }
    }

    /// <summary>One range: <c>bytes=a-b</c>, <c>bytes=a-</c> or <c>bytes=-n</c> (RFC 9110), clipped to the size.</summary>
    private static bool TryRange(string header, long size, out long offset, out long length)
    {
        (offset, length) = (0, 0);
        if (!RangeHeaderValue.TryParse(header, out var parsed) || parsed.Unit != "bytes" || parsed.Ranges.Count != 1 || size == 0)
        {
            return false;
        }

        var r = parsed.Ranges.First();
        if (r.From is { } from)
        {
            if (from >= size || (r.To is { } to0 && to0 < from))
            {
                return false;
            }

            offset = from;
            length = Math.Min(r.To ?? (size - 1), size - 1) - from + 1;
            return true;
        }

        if (r.To is { } suffix && suffix > 0)
        {
            length = Math.Min(suffix, size);
            offset = size - length;
            return true;
        }

        return false;
    }

    private static ArtifactBody Body(ArtifactRecord a) => new(a.ArtifactId, a.Name, a.Size, a.Sha256, a.ContentType, a.CreatedAt.ToUnixTimeSeconds(), a.Downloads);

    private static ApiException NotFound(string artifactId) => ApiException.NotFound($"Artifact {artifactId} cannot be found.");

    private static ApiException TooLarge(long max) => new(413, "RequestEntityTooLargeException", $"The artifact is larger than the limit of {max} bytes (Iot:Artifacts:MaxBytes).");
}
