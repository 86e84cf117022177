using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Abstractions.Artifacts;

/// <summary>A stored file (firmware, a configuration bundle): what describe and list show.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ArtifactRecord")]
public sealed record ArtifactRecord(
    [property: Id(0)] string ArtifactId,
    [property: Id(1)] string Name,
    [property: Id(2)] long Size,
    [property: Id(3)] string Sha256,
    [property: Id(4)] string ContentType,
    [property: Id(5)] DateTimeOffset CreatedAt,
    [property: Id(6)] long Downloads);

/// <summary>
/// One artifact's metadata, keyed by its id; the bytes are in the <see cref="IArtifactBlobStore"/>. Written once the
/// bytes are stored, so an artifact that can be described can be downloaded.
/// </summary>
[Alias("OrleansIot.IArtifactGrain")]
public interface IArtifactGrain : IGrainWithStringKey
{
    /// <summary>Records the stored bytes' metadata; the id must be new.</summary>
    [Alias("Create")]
    Task<ArtifactRecord> Create(string name, long size, string sha256, string contentType);

    /// <summary>The artifact, or <c>null</c>.</summary>
    [Alias("Describe"), Orleans.Concurrency.ReadOnly]
    Task<ArtifactRecord?> Describe();

    /// <summary>Deletes the metadata; refused (<c>ConflictException</c>) while a job in progress refers to the artifact.</summary>
    [Alias("Delete")]
    Task Delete();

    /// <summary>Counts one download (a request that starts at byte 0).</summary>
    [Alias("CountDownload")]
    Task CountDownload();
}

/// <summary>The artifacts in id order (<c>ListArtifacts</c>); stateless, any silo answers.</summary>
[Alias("OrleansIot.IArtifactListGrain")]
public interface IArtifactListGrain : IGrainWithIntegerKey
{
    /// <summary>Artifact ids after <paramref name="marker"/>, at most <paramref name="pageSize"/>, and the marker of the next page.</summary>
    [Alias("Page")]
    Task<(IReadOnlyList<string> Ids, string? NextMarker)> Page(string? marker, int pageSize);
}

/// <summary>The key download URLs are signed with: derived on the grain from <c>Iot:Auth:CaKeyPassword</c> and a stored salt, so no node's configuration or database row alone holds it.</summary>
[Alias("OrleansIot.IArtifactKeyGrain")]
public interface IArtifactKeyGrain : IGrainWithIntegerKey
{
    /// <summary>The 32-byte HMAC key.</summary>
    [Alias("SigningKey")]
    Task<byte[]> SigningKey();
}

/// <summary>Where artifacts' bytes live: a directory in the embedded default, PostgreSQL in that mode.</summary>
public interface IArtifactBlobStore
{
    /// <summary>Stores the stream's bytes under <paramref name="artifactId"/>; returns the size and SHA-256 (hex) of what was stored.</summary>
    /// <exception cref="ArtifactTooLargeException">The stream is longer than <paramref name="maxBytes"/>; nothing is kept.</exception>
    Task<(long Size, string Sha256)> WriteAsync(string artifactId, Stream content, long maxBytes, CancellationToken cancellationToken);

    /// <summary>Copies <paramref name="length"/> bytes from <paramref name="offset"/> to <paramref name="destination"/>.</summary>
    Task ReadAsync(string artifactId, long offset, long length, Stream destination, CancellationToken cancellationToken);

    /// <summary>Removes the bytes (a missing artifact is fine).</summary>
    Task DeleteAsync(string artifactId, CancellationToken cancellationToken);
}

/// <summary>An upload over <see cref="ArtifactOptions.MaxBytes"/>.</summary>
public sealed class ArtifactTooLargeException(long maxBytes) : Exception($"The artifact is larger than the limit of {maxBytes} bytes (Iot:Artifacts:MaxBytes).")
{
    /// <summary>The limit.</summary>
    public long MaxBytes { get; } = maxBytes;
}

/// <summary>Artifact settings (<c>Iot:Artifacts</c>).</summary>
public sealed class ArtifactOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Iot:Artifacts";

    /// <summary>The largest artifact accepted, in bytes (default 1 GiB).</summary>
    [Range(1L, 64L * 1024 * 1024 * 1024)]
    public long MaxBytes { get; set; } = 1024L * 1024 * 1024;

    /// <summary>
    /// Where the embedded default keeps artifacts' bytes (PostgreSQL mode stores them in the database). Default: a
    /// directory under the system's temporary directory, since the embedded default keeps no metadata across restarts.
    /// </summary>
    public string Directory { get; set; } = Path.Combine(Path.GetTempPath(), "orleansiot", "artifacts");

    /// <summary>
    /// The base of the download URLs handed to devices (scheme, host, port), e.g. <c>https://iot.example.com:8443</c>:
    /// a load balancer's or any node's address, since every node serves every artifact. Default: this node's HTTP
    /// listener.
    /// </summary>
    public string? BaseUrl { get; set; }

    /// <summary>How long a URL in a job document is valid unless the job says otherwise (AWS: 60-3600 s).</summary>
    [Range(60, 3600)]
    public int DefaultUrlLifetimeSeconds { get; set; } = 3600;
}
