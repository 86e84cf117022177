using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions.Artifacts;

namespace OrleansIot.Gateway.Artifacts;

/// <summary>
/// The embedded default's artifact bytes: one file per artifact in <see cref="ArtifactOptions.Directory"/>, written to
/// a temporary name and renamed when complete, so a reader never sees half a file. Nodes of one machine share it.
/// </summary>
internal sealed class FileArtifactStore(IOptions<ArtifactOptions> options) : IArtifactBlobStore
{
    private const int BufferBytes = 81920;

    private string Root => Path.GetFullPath(options.Value.Directory);

    public async Task<(long Size, string Sha256)> WriteAsync(string artifactId, Stream content, long maxBytes, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(Root);
        var temporary = Path.Combine(Root, $"{artifactId}.{Guid.NewGuid():N}.partial");
        try
        {
            long size = 0;
            using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
            await using (var file = new FileStream(temporary, FileMode.CreateNew, FileAccess.Write, FileShare.None, BufferBytes, useAsync: true))
            {
                var buffer = new byte[BufferBytes];
                int read;
                while ((read = await content.ReadAsync(buffer, cancellationToken)) > 0)
                {
                    size += read;
                    if (size > maxBytes)
                    {
                        throw new ArtifactTooLargeException(maxBytes);
                    }

                    hash.AppendData(buffer, 0, read);
                    await file.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                }

                await file.FlushAsync(cancellationToken);
            }

            File.Move(temporary, PathOf(artifactId), overwrite: true);
            return (size, Convert.ToHexStringLower(hash.GetHashAndReset()));
        }
        finally
        {
            File.Delete(temporary);   // gone after the move; after a failure, nothing is kept
        }
    }

    public async Task ReadAsync(string artifactId, long offset, long length, Stream destination, CancellationToken cancellationToken)
    {
        await using var file = new FileStream(PathOf(artifactId), FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete, BufferBytes, useAsync: true);
        file.Seek(offset, SeekOrigin.Begin);
        var buffer = new byte[BufferBytes];
        while (length > 0)
        {
            var read = await file.ReadAsync(buffer.AsMemory(0, (int)Math.Min(buffer.Length, length)), cancellationToken);
            if (read == 0)
            {
                throw new IOException($"Artifact {artifactId} is shorter than its recorded size.");
            }

            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
            length -= read;
        }
    }

    public Task DeleteAsync(string artifactId, CancellationToken cancellationToken)
    {
        File.Delete(PathOf(artifactId));
        return Task.CompletedTask;
    }

    private string PathOf(string artifactId) => Path.Combine(Root, artifactId + ".bin");
}
