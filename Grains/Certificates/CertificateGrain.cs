using System.Security.Cryptography.X509Certificates;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Catalogs;

namespace OrleansIot.Grains.Certificates;

/// <summary>One registered certificate (key: its id), persisted; never its private key.</summary>
[GrainType("certificate")]
internal sealed class CertificateGrain(
    [PersistentState("certificate", StorageNames.Default)] IPersistentState<CertificateState> state,
    Abstractions.Policies.IAccessChangeNotifier access,
    TimeProvider time) : Grain, ICertificateGrain, IRemindable
{
    private const string OwnershipReminder = "ownership-token";

    private string Id => this.GetPrimaryKeyString();

    public async Task<CertificateInfo> Register(string certificatePem, string? caCertificateId, string status)
    {
        if (state.State.Pem is not null)
        {
            throw ApiException.AlreadyExists($"Certificate {Id} is already registered.");
        }

        using var certificate = X509Certificate2.CreateFromPem(certificatePem);
        if (CertificateIds.Of(certificate) != Id)
        {
            throw ApiException.Invalid("The certificate's id is the SHA-256 of its DER encoding; this grain's key is another.");
        }

        var now = time.GetUtcNow();
        state.State = new CertificateState
        {
            Pem = certificate.ExportCertificatePem(),
            Status = status,
            CaCertificateId = caCertificateId,
            Created = now,
            Modified = now,
            NotBefore = certificate.NotBefore.ToUniversalTime(),
            NotAfter = certificate.NotAfter.ToUniversalTime(),
        };
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.Certificates).Add(Id);
        return Info();
    }

    public Task<CertificateInfo?> Describe() => Task.FromResult(state.State.Pem is null ? null : Info());

    public async Task UpdateStatus(string status)
    {
        Existing();
        if (!CertificateStatus.Settable.Contains(status))
        {
            throw ApiException.Invalid($"newStatus must be one of {string.Join(", ", CertificateStatus.Settable)}.");
        }

        if (state.State.Status == CertificateStatus.Revoked && status != CertificateStatus.Revoked)
        {
            throw new ApiException(409, "CertificateStateException", $"Certificate {Id} is revoked; a revoked certificate cannot be activated again.");
        }

        state.State.Status = status;
        state.State.Modified = time.GetUtcNow();
        await state.WriteStateAsync();
        await ChangedAsync();
    }

    public async Task Delete()
    {
        Existing();
        if (state.State.Status == CertificateStatus.Active)
        {
            throw new ApiException(409, "CertificateStateException", $"Certificate {Id} is ACTIVE; deactivate or revoke it first.");
        }

        if (state.State.Things.Count > 0)
        {
            throw new ApiException(409, "DeleteConflictException", $"Certificate {Id} is attached to {state.State.Things.Count} thing(s); detach it first.");
        }

        await state.ClearStateAsync();
        state.State = new CertificateState();
        await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.Certificates).Remove(Id);
        await ChangedAsync();
    }

    public async Task SetOwnershipToken(byte[] tokenHash, DateTimeOffset expires)
    {
        Existing();
        state.State.OwnershipTokenHash = tokenHash;
        state.State.OwnershipTokenExpires = expires;
        await state.WriteStateAsync();
        // Durable (a reminder, not a timer): the certificate is deleted when its token expires unused, even if this
        // activation or its node is gone by then. The period only matters if deleting fails.
        var due = expires - time.GetUtcNow();
        await this.RegisterOrUpdateReminder(OwnershipReminder, due > TimeSpan.Zero ? due : TimeSpan.Zero, TimeSpan.FromMinutes(5));
    }

    public async Task ReceiveReminder(string reminderName, TickStatus status)
    {
        if (reminderName != OwnershipReminder)
        {
            return;
        }

        var s = state.State;
        if (s.Pem is not null && s.OwnershipTokenHash is not null && s.Status == CertificateStatus.PendingActivation && s.Things.Count == 0
            && time.GetUtcNow() >= s.OwnershipTokenExpires)
        {
            // AWS: a certificate not used by RegisterThing within the token's hour is deleted.
            await state.ClearStateAsync();
            state.State = new CertificateState();
            await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.Certificates).Remove(Id);
            await ChangedAsync();
        }
        else if (s.OwnershipTokenHash is not null && time.GetUtcNow() < s.OwnershipTokenExpires)
        {
            return;   // a newer token: its own due time was set when it was given
        }

        if (await this.GetReminder(OwnershipReminder) is { } reminder)
        {
            await this.UnregisterReminder(reminder);
        }
    }

    public async Task<bool> ClaimOwnership(byte[] tokenHash, bool spend)
    {
        if (state.State.OwnershipTokenHash is not { } expected || time.GetUtcNow() > state.State.OwnershipTokenExpires
            || !System.Security.Cryptography.CryptographicOperations.FixedTimeEquals(expected, tokenHash))
        {
            return false;
        }

        if (spend)
        {
            state.State.OwnershipTokenHash = null;
            await state.WriteStateAsync();
        }

        return true;
    }

    public async Task AttachThing(string thingName)
    {
        Existing();
        if (!state.State.Things.Contains(thingName))
        {
            state.State.Things.Add(thingName);
            await state.WriteStateAsync();
            await ChangedAsync();
        }
    }

    public async Task DetachThing(string thingName)
    {
        if (state.State.Things.Remove(thingName))
        {
            await state.WriteStateAsync();
            await ChangedAsync();
        }
    }

    /// <summary>Live connections with this certificate are re-checked on every node (closed unless it is ACTIVE).</summary>
    private Task ChangedAsync() => access.Changed(new Abstractions.Policies.AccessChange(Abstractions.Policies.AccessChangeKind.Certificate, Id));

    private void Existing()
    {
        if (state.State.Pem is null)
        {
            throw ApiException.NotFound($"Certificate {Id} cannot be found.");
        }
    }

    private CertificateInfo Info()
    {
        var s = state.State;
        return new CertificateInfo(Id, s.Pem!, s.Status, s.CaCertificateId, s.Created, s.Modified, s.NotBefore, s.NotAfter,
            $"{s.Modified.ToUnixTimeMilliseconds():x}", [.. s.Things]);
    }
}

[GenerateSerializer, Alias("OrleansIot.CertificateState")]
public sealed class CertificateState
{
    [Id(0)] public string? Pem { get; set; }

    [Id(1)] public string Status { get; set; } = CertificateStatus.Inactive;

    [Id(2)] public string? CaCertificateId { get; set; }

    [Id(3)] public DateTimeOffset Created { get; set; }

    [Id(4)] public DateTimeOffset Modified { get; set; }

    [Id(5)] public DateTimeOffset NotBefore { get; set; }

    [Id(6)] public DateTimeOffset NotAfter { get; set; }

    [Id(7)] public List<string> Things { get; set; } = [];

    /// <summary>SHA-256 of the fleet provisioning ownership token, until it is used or expires.</summary>
    [Id(8)] public byte[]? OwnershipTokenHash { get; set; }

    [Id(9)] public DateTimeOffset OwnershipTokenExpires { get; set; }
}
