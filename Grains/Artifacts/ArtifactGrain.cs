using System.Security.Cryptography;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Artifacts;
using OrleansIot.Grains.Abstractions.Jobs;
using OrleansIot.Grains.Catalogs;

namespace OrleansIot.Grains.Artifacts;

/// <summary>An artifact's metadata and download counter; listed through the <c>artifacts</c> name catalog.</summary>
[GrainType("artifact")]
internal sealed class ArtifactGrain(
    [PersistentState("artifact", StorageNames.Default)] IPersistentState<ArtifactState> state,
    TimeProvider time) : Grain, IArtifactGrain
{
    public const string Catalog = "artifacts";

    private string ArtifactId => this.GetPrimaryKeyString();

    public async Task<ArtifactRecord> Create(string name, long size, string sha256, string contentType)
    {
        if (state.State.Record is not null)
        {
            throw ApiException.AlreadyExists($"Artifact {ArtifactId} already exists.");
        }

        state.State.Record = new ArtifactRecord(ArtifactId, name, size, sha256, contentType, time.GetUtcNow(), 0);
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<INameCatalogGrain>(Catalog).Add(ArtifactId);
        return state.State.Record;
    }

    public Task<ArtifactRecord?> Describe() => Task.FromResult(state.State.Record);

    public async Task Delete()
    {
        if (state.State.Record is null)
        {
            throw ApiException.NotFound($"Artifact {ArtifactId} cannot be found.");
        }

        var jobs = await GrainFactory.GetGrain<IJobCatalogGrain>(0).Referencing(ArtifactId);
        if (jobs.Count > 0)
        {
            throw new ApiException(409, "ConflictException", $"Artifact {ArtifactId} is used by jobs in progress: {string.Join(", ", jobs)}. Cancel or finish them first.");
        }

        await state.ClearStateAsync();
        state.State = new ArtifactState();
        await GrainFactory.GetGrain<INameCatalogGrain>(Catalog).Remove(ArtifactId);
    }

    public async Task CountDownload()
    {
        if (state.State.Record is { } record)
        {
            state.State.Record = record with { Downloads = record.Downloads + 1 };
            await state.WriteStateAsync();
        }
    }
}

/// <summary>Lists artifacts from the name catalog.</summary>
[GrainType("artifact-list"), Orleans.Concurrency.StatelessWorker]
internal sealed class ArtifactListGrain : Grain, IArtifactListGrain
{
    public Task<(IReadOnlyList<string> Ids, string? NextMarker)> Page(string? marker, int pageSize) =>
        GrainFactory.GetGrain<INameCatalogGrain>(ArtifactGrain.Catalog).Page(marker, pageSize);
}

/// <summary>The download URL key: PBKDF2 of <c>Iot:Auth:CaKeyPassword</c> with a salt made once and stored.</summary>
[GrainType("artifact-key")]
internal sealed class ArtifactKeyGrain(
    [PersistentState("artifact-key", StorageNames.Default)] IPersistentState<ArtifactKeyState> state,
    IOptions<Certificates.CertificateAuthorityOptions> auth) : Grain, IArtifactKeyGrain
{
    private byte[]? _key;

    public async Task<byte[]> SigningKey()
    {
        if (_key is null)
        {
            if (state.State.Salt.Length == 0)
            {
                state.State.Salt = RandomNumberGenerator.GetBytes(16);
                await state.WriteStateAsync();
            }

            _key = Rfc2898DeriveBytes.Pbkdf2(auth.Value.CaKeyPassword + "/artifact-urls", state.State.Salt, 100_000, HashAlgorithmName.SHA256, 32);
        }

        return _key;
    }
}

[GenerateSerializer, Alias("OrleansIot.ArtifactState")]
public sealed class ArtifactState
{
    [Id(0)] public ArtifactRecord? Record { get; set; }
}

[GenerateSerializer, Alias("OrleansIot.ArtifactKeyState")]
public sealed class ArtifactKeyState
{
    [Id(0)] public byte[] Salt { get; set; } = [];
}
