using System.Security.Cryptography.X509Certificates;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Catalogs;

namespace OrleansIot.Grains.Certificates;

[GrainType("ca-certificate")]
internal sealed class CaCertificateGrain(
    [PersistentState("ca-certificate", StorageNames.Default)] IPersistentState<CaCertificateState> state,
    Abstractions.Policies.IAccessChangeNotifier access,
    TimeProvider time) : Grain, ICaCertificateGrain
{
    private string Id => this.GetPrimaryKeyString();

    public async Task<CertificateInfo> Register(string caPem, string verificationPem, string registrationCode, bool active, bool autoRegistration)
    {
        if (state.State.Pem is not null)
        {
            throw ApiException.AlreadyExists($"CA certificate {Id} is already registered.");
        }

        using var ca = CertificatePem.Load(caPem, "caCertificate");
        using var verification = CertificatePem.Load(verificationPem, "verificationCertificate");
        if (ca.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
        {
            throw ApiException.Invalid("caCertificate is not a CA certificate (basic constraints CA:TRUE).");
        }

        CertificatePem.CheckValid(ca, "caCertificate", time.GetUtcNow());
        if (verification.GetNameInfo(X509NameType.SimpleName, false) != registrationCode)
        {
            throw ApiException.Invalid("verificationCertificate's common name must be this account's registration code (GET /api/registrationcode).");
        }

        if (!CertificatePem.IssuedBy(verification, ca))
        {
            throw ApiException.Invalid("verificationCertificate is not signed by the CA's private key (proof of possession failed).");
        }

        var now = time.GetUtcNow();
        state.State = new CaCertificateState
        {
            Pem = ca.ExportCertificatePem(),
            Status = active ? CertificateStatus.Active : CertificateStatus.Inactive,
            AutoRegistration = autoRegistration,
            Created = now,
            Modified = now,
            NotBefore = ca.NotBefore.ToUniversalTime(),
            NotAfter = ca.NotAfter.ToUniversalTime(),
        };
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.CaCertificates).Add(Id);
        return Info();
    }

    public Task<(CertificateInfo Info, bool AutoRegistration)?> Describe() =>
        Task.FromResult<(CertificateInfo, bool)?>(state.State.Pem is null ? null : (Info(), state.State.AutoRegistration));

    public async Task Update(string? newStatus, bool? autoRegistration)
    {
        Existing();
        if (newStatus is not null)
        {
            state.State.Status = newStatus is CertificateStatus.Active or CertificateStatus.Inactive
                ? newStatus
                : throw ApiException.Invalid("newStatus must be ACTIVE or INACTIVE.");
        }

        if (autoRegistration is { } auto)
        {
            state.State.AutoRegistration = auto;
        }

        state.State.Modified = time.GetUtcNow();
        await state.WriteStateAsync();
        if (newStatus is not null)
        {
            await access.Changed(new Abstractions.Policies.AccessChange(Abstractions.Policies.AccessChangeKind.CaCertificate, Id));
        }
    }

    public async Task SetRegistrationConfig(RegistrationConfig? config)
    {
        Existing();
        await Provisioning.RegistrationConfigs.CheckAsync(config, GrainFactory);
        state.State.RegistrationConfig = config is { TemplateBody: null, TemplateName: null } ? null : config;
        state.State.Modified = time.GetUtcNow();
        await state.WriteStateAsync();
    }

    public Task<RegistrationConfig?> GetRegistrationConfig() => Task.FromResult(state.State.Pem is null ? null : state.State.RegistrationConfig);

    public async Task Delete()
    {
        Existing();
        if (state.State.Status == CertificateStatus.Active)
        {
            throw new ApiException(409, "CertificateStateException", $"CA certificate {Id} is ACTIVE; deactivate it first.");
        }

        await state.ClearStateAsync();
        state.State = new CaCertificateState();
        await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.CaCertificates).Remove(Id);
    }

    private void Existing()
    {
        if (state.State.Pem is null)
        {
            throw ApiException.NotFound($"CA certificate {Id} cannot be found.");
        }
    }

    private CertificateInfo Info()
    {
        var s = state.State;
        return new CertificateInfo(Id, s.Pem!, s.Status, null, s.Created, s.Modified, s.NotBefore, s.NotAfter, $"{s.Modified.ToUnixTimeMilliseconds():x}", []);
    }
}

[GenerateSerializer, Alias("OrleansIot.CaCertificateState")]
public sealed class CaCertificateState
{
    [Id(0)] public string? Pem { get; set; }

    [Id(1)] public string Status { get; set; } = CertificateStatus.Inactive;

    [Id(2)] public bool AutoRegistration { get; set; }

    [Id(3)] public DateTimeOffset Created { get; set; }

    [Id(4)] public DateTimeOffset Modified { get; set; }

    [Id(5)] public DateTimeOffset NotBefore { get; set; }

    [Id(6)] public DateTimeOffset NotAfter { get; set; }

    [Id(7)] public RegistrationConfig? RegistrationConfig { get; set; }
}
