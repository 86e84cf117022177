using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Catalogs;

namespace OrleansIot.Grains.Certificates;

/// <summary>One registered certificate (key: its id), persisted; never its private key.</summary>
[GrainType("certificate")]
internal sealed class CertificateGrain(
    [PersistentState("certificate", StorageNames.Default)] IPersistentState<CertificateState> state,
    TimeProvider time) : Grain, ICertificateGrain
{
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
    }

    public async Task AttachThing(string thingName)
    {
        Existing();
        if (!state.State.Things.Contains(thingName))
        {
            state.State.Things.Add(thingName);
            await state.WriteStateAsync();
        }
    }

    public async Task DetachThing(string thingName)
    {
        if (state.State.Things.Remove(thingName))
        {
            await state.WriteStateAsync();
        }
    }

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
}

/// <summary>The certificates a thing has as principals (key: thing name).</summary>
[Alias("OrleansIot.IThingPrincipalsGrain")]
internal interface IThingPrincipalsGrain : IGrainWithStringKey
{
    [Alias("Add")]
    Task Add(string certificateId);

    [Alias("Remove")]
    Task Remove(string certificateId);

    [Alias("List"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<string>> List();
}

[GrainType("thing-principals")]
internal sealed class ThingPrincipalsGrain(
    [PersistentState("principals", StorageNames.Default)] IPersistentState<ThingPrincipalsState> state) : Grain, IThingPrincipalsGrain
{
    public async Task Add(string certificateId)
    {
        if (!state.State.Certificates.Contains(certificateId))
        {
            state.State.Certificates.Add(certificateId);
            await state.WriteStateAsync();
        }
    }

    public async Task Remove(string certificateId)
    {
        if (state.State.Certificates.Remove(certificateId))
        {
            await state.WriteStateAsync();
        }
    }

    public Task<IReadOnlyList<string>> List() => Task.FromResult<IReadOnlyList<string>>([.. state.State.Certificates]);
}

[GenerateSerializer, Alias("OrleansIot.ThingPrincipalsState")]
public sealed class ThingPrincipalsState
{
    [Id(0)] public List<string> Certificates { get; set; } = [];
}

/// <summary>Creating and listing certificates, and thing principals, on any node.</summary>
[GrainType("certificate-service"), Orleans.Concurrency.StatelessWorker]
internal sealed class CertificateServiceGrain(IOptions<CertificateAuthorityOptions> auth, IOptions<RegistryOptions> registry) : Grain, ICertificateServiceGrain
{
    private ICertificateAuthorityGrain Ca => GrainFactory.GetGrain<ICertificateAuthorityGrain>(ICertificateAuthorityGrain.Key);

    public async Task<CreatedKeysAndCertificate> CreateKeysAndCertificate(bool setAsActive)
    {
        // RSA 2048 as AWS issues; the private key leaves in the answer and is not kept.
        using var key = RSA.Create(2048);
        var pem = await Ca.Sign(key.ExportSubjectPublicKeyInfo(), "CN=OrleansIot Certificate", auth.Value.CertificateValidityDays);
        var info = await RegisterAsync(pem, setAsActive);
        return new CreatedKeysAndCertificate(info.CertificateId, pem, key.ExportSubjectPublicKeyInfoPem(), key.ExportRSAPrivateKeyPem());
    }

    public async Task<CertificateInfo> CreateFromCsr(string csrPem, bool setAsActive)
    {
        CertificateRequest request;
        try
        {
            request = CertificateRequest.LoadSigningRequestPem(csrPem, HashAlgorithmName.SHA256);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw ApiException.Invalid($"certificateSigningRequest is not a valid PEM CSR with a valid signature: {ex.Message}");
        }

        var subject = request.SubjectName.Name.Length == 0 ? "CN=OrleansIot Certificate" : request.SubjectName.Name;
        var pem = await Ca.Sign(request.PublicKey.ExportSubjectPublicKeyInfo(), subject, auth.Value.CertificateValidityDays);
        return await RegisterAsync(pem, setAsActive);
    }

    public async Task<CertificateInfo> Register(string certificatePem, string? caPem, string status, bool withoutCa)
    {
        if (status is not (CertificateStatus.Active or CertificateStatus.Inactive))
        {
            throw ApiException.Invalid("status must be ACTIVE or INACTIVE.");
        }

        using var certificate = CertificatePem.Load(certificatePem, "certificatePem");
        CertificatePem.CheckValid(certificate, "certificatePem", DateTimeOffset.UtcNow);
        string? caId = null;
        if (!withoutCa)
        {
            var candidates = new List<string>();
            if (caPem is not null)
            {
                using var named = CertificatePem.Load(caPem, "caCertificatePem");
                candidates.Add(CertificateIds.Of(named));
            }
            else
            {
                candidates.AddRange((await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.CaCertificates).Page(null, 1000)).Names);
            }

            foreach (var candidate in candidates)
            {
                if (await GrainFactory.GetGrain<ICaCertificateGrain>(candidate).Describe() is not { } ca)
                {
                    continue;
                }

                using var issuer = X509Certificate2.CreateFromPem(ca.Info.CertificatePem);
                if (CertificatePem.IssuedBy(certificate, issuer))
                {
                    caId = ca.Info.Status == CertificateStatus.Active
                        ? candidate
                        : throw new ApiException(400, "CertificateValidationException", $"The issuing CA {candidate} is not ACTIVE.");
                    break;
                }
            }

            if (caId is null)
            {
                throw new ApiException(400, "CertificateValidationException", "The certificate is not signed by a registered CA (RegisterCACertificate first, or register it without a CA).");
            }
        }

        return await GrainFactory.GetGrain<ICertificateGrain>(CertificateIds.Of(certificate)).Register(certificatePem, caId, status);
    }

    public async Task<CertificateInfo> RegisterCa(string caPem, string verificationPem, bool active, bool autoRegistration)
    {
        using var ca = CertificatePem.Load(caPem, "caCertificate");
        var code = await Ca.RegistrationCode();
        return await GrainFactory.GetGrain<ICaCertificateGrain>(CertificateIds.Of(ca)).Register(caPem, verificationPem, code, active, autoRegistration);
    }

    public async Task<IReadOnlyList<CertificateInfo>> ListCas()
    {
        var (ids, _) = await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.CaCertificates).Page(null, 1000);
        var cas = await Task.WhenAll(ids.Select(id => GrainFactory.GetGrain<ICaCertificateGrain>(id).Describe()));
        return [.. cas.Where(c => c is not null).Select(c => c!.Value.Info)];
    }

    public async Task<(IReadOnlyList<CertificateInfo> Certificates, string? NextMarker)> List(string? marker, int pageSize)
    {
        var (ids, next) = await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.Certificates).Page(marker, pageSize);
        var infos = await Task.WhenAll(ids.Select(id => GrainFactory.GetGrain<ICertificateGrain>(id).Describe()));
        return ([.. infos.OfType<CertificateInfo>()], next);
    }

    public async Task AttachThingPrincipal(string thingName, string principal)
    {
        var id = CertificateIds.FromArn(principal) ?? throw ApiException.Invalid($"Principal '{principal}' is not a certificate ARN (arn:aws:iot:region:account:cert/<id>).");
        if (await GrainFactory.GetGrain<IThingGrain>(thingName).DescribeThing() is null)
        {
            throw ApiException.NotFound($"Thing {thingName} cannot be found.");
        }

        await GrainFactory.GetGrain<ICertificateGrain>(id).AttachThing(thingName);
        await GrainFactory.GetGrain<IThingPrincipalsGrain>(thingName).Add(id);
    }

    public async Task DetachThingPrincipal(string thingName, string principal)
    {
        var id = CertificateIds.FromArn(principal) ?? throw ApiException.Invalid($"Principal '{principal}' is not a certificate ARN.");
        await GrainFactory.GetGrain<IThingPrincipalsGrain>(thingName).Remove(id);
        await GrainFactory.GetGrain<ICertificateGrain>(id).DetachThing(thingName);
    }

    public async Task<IReadOnlyList<string>> ListThingPrincipals(string thingName) =>
        [.. (await GrainFactory.GetGrain<IThingPrincipalsGrain>(thingName).List()).Select(id => registry.Value.Arn($"cert/{id}"))];

    private async Task<CertificateInfo> RegisterAsync(string pem, bool setAsActive)
    {
        var (caId, _) = await Ca.Get();
        using var certificate = X509Certificate2.CreateFromPem(pem);
        var id = CertificateIds.Of(certificate);
        return await GrainFactory.GetGrain<ICertificateGrain>(id).Register(pem, caId, setAsActive ? CertificateStatus.Active : CertificateStatus.Inactive);
    }
}
