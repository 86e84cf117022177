using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using OrleansIot.Gateway.Artifacts;
using OrleansIot.Grains.Abstractions.Artifacts;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Jobs;

/// <summary>What both artifact stores must do (a directory, PostgreSQL): the bytes and hash of what was streamed in, any range back, nothing kept of an oversized upload.</summary>
public abstract class ArtifactStoreContract
{
    protected abstract Task<IArtifactBlobStore> StoreAsync();

    private static async Task<byte[]> ReadAsync(IArtifactBlobStore store, string id, long offset, long length)
    {
        using var buffer = new MemoryStream();
        await store.ReadAsync(id, offset, length, buffer, CancellationToken.None);
        return buffer.ToArray();
    }

    [Fact]
    public async Task WhatIsStreamedIn_ComesBackByRange_AcrossChunkBoundaries()
    {
        var store = await StoreAsync();
        var bytes = RandomNumberGenerator.GetBytes((5 * 1024 * 1024 / 2) + 123);   // 2.5 MiB and a bit: three 1 MiB chunks
        var id = Ids.NewId("blob");

        var (size, sha) = await store.WriteAsync(id, new MemoryStream(bytes), bytes.Length, CancellationToken.None);

        Assert.Equal(bytes.Length, size);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(bytes)), sha);
        Assert.Equal(bytes, await ReadAsync(store, id, 0, bytes.Length));
        Assert.Equal(bytes[(1024 * 1024 - 10)..(2 * 1024 * 1024 + 10)], await ReadAsync(store, id, (1024 * 1024) - 10, (1024 * 1024) + 20));
        Assert.Equal(bytes[^5..], await ReadAsync(store, id, bytes.Length - 5, 5));
    }

    [Fact]
    public async Task AnUploadOverTheLimit_Throws_AndLeavesNothing_WhileAReplacedOneIsWhole()
    {
        var store = await StoreAsync();
        var id = Ids.NewId("big");
        await Assert.ThrowsAsync<ArtifactTooLargeException>(() => store.WriteAsync(id, new MemoryStream(new byte[1_500_000]), 1_000_000, CancellationToken.None));
        await Assert.ThrowsAnyAsync<Exception>(() => ReadAsync(store, id, 0, 1));

        var kept = Ids.NewId("kept");
        await store.WriteAsync(kept, new MemoryStream([1, 2, 3]), 10, CancellationToken.None);
        await Assert.ThrowsAsync<ArtifactTooLargeException>(() => store.WriteAsync(kept, new MemoryStream(new byte[11]), 10, CancellationToken.None));
        Assert.Equal([1, 2, 3], await ReadAsync(store, kept, 0, 3));

        await store.DeleteAsync(kept, CancellationToken.None);
        await Assert.ThrowsAnyAsync<Exception>(() => ReadAsync(store, kept, 0, 1));
    }
}

public sealed class FileArtifactStoreTests : ArtifactStoreContract, IDisposable
{
    private readonly string _directory = Path.Combine(Path.GetTempPath(), $"oiot-store-{Guid.NewGuid():N}");

    protected override Task<IArtifactBlobStore> StoreAsync() =>
        Task.FromResult<IArtifactBlobStore>(new FileArtifactStore(Options.Create(new ArtifactOptions { Directory = _directory })));

    public void Dispose()
    {
        if (Directory.Exists(_directory))
        {
            Directory.Delete(_directory, recursive: true);
        }
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresArtifactStoreTests(PostgresServer postgres) : ArtifactStoreContract
{
    protected override async Task<IArtifactBlobStore> StoreAsync() => new PostgresArtifactStore(await postgres.CreateMigratedDataSourceAsync("artifacts"));
}
