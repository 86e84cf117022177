using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Catalogs;

namespace OrleansIot.Grains.Certificates;

/// <summary>Creating and listing certificates, and thing principals, on any node.</summary>
[GrainType("certificate-service"), Orleans.Concurrency.StatelessWorker]
internal sealed class CertificateServiceGrain(
    IOptions<CertificateAuthorityOptions> auth,
    IOptions<RegistryOptions> registry,
    Abstractions.Routing.IBrokerPublisher broker,
    TimeProvider time) : Grain, ICertificateServiceGrain
{
    private ICertificateAuthorityGrain Ca => GrainFactory.GetGrain<ICertificateAuthorityGrain>(ICertificateAuthorityGrain.Key);

    public async Task<CreatedKeysAndCertificate> CreateKeysAndCertificate(string status)
    {
        // RSA 2048 as AWS issues; the private key leaves in the answer and is not kept.
        using var key = RSA.Create(2048);
        var pem = await Ca.Sign(key.ExportSubjectPublicKeyInfo(), "CN=OrleansIot Certificate", auth.Value.CertificateValidityDays);
        var info = await RegisterAsync(pem, status);
        return new CreatedKeysAndCertificate(info.CertificateId, pem, key.ExportSubjectPublicKeyInfoPem(), key.ExportRSAPrivateKeyPem());
    }

    public async Task<CertificateInfo> CreateFromCsr(string csrPem, string status)
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
        return await RegisterAsync(pem, status);
    }

    public async Task<CertificateInfo> Register(string certificatePem, string? caPem, string status, bool withoutCa)
    {
        if (status is not (CertificateStatus.Active or CertificateStatus.Inactive))
        {
            throw ApiException.Invalid("status must be ACTIVE or INACTIVE.");
        }

        using var certificate = CertificatePem.Load(certificatePem, "certificatePem");
        CertificatePem.CheckValid(certificate, "certificatePem", time.GetUtcNow());
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
                candidates.AddRange(await RegisteredCasAsync());
            }

            var (found, foundStatus, _) = await FindIssuerAsync(certificate, candidates);
            caId = found is null || foundStatus == CertificateStatus.Active
                ? found
                : throw new ApiException(400, "CertificateValidationException", $"The issuing CA {found} is not ACTIVE.");

            if (caId is null)
            {
                throw new ApiException(400, "CertificateValidationException", "The certificate is not signed by a registered CA (RegisterCACertificate first, or register it without a CA).");
            }
        }

        return await GrainFactory.GetGrain<ICertificateGrain>(CertificateIds.Of(certificate)).Register(certificatePem, caId, status);
    }

    public async Task<FirstConnect> RegisterOnFirstConnect(string certificatePem)
    {
        using var certificate = CertificatePem.Load(certificatePem, "certificatePem");
        var (caId, caStatus, autoRegistration) = await FindIssuerAsync(certificate, await RegisteredCasAsync());
        if (caId is null || caStatus != CertificateStatus.Active || !autoRegistration)
        {
            return new FirstConnect(FirstConnectOutcome.NotRegistered);
        }

        var id = CertificateIds.Of(certificate);
        var grain = GrainFactory.GetGrain<ICertificateGrain>(id);
        var existing = await grain.Describe();
        if (existing is null)
        {
            CertificatePem.CheckValid(certificate, "certificatePem", time.GetUtcNow());
            existing = await grain.Register(certificatePem, caId, CertificateStatus.PendingActivation);
        }
        else if (existing.Status != CertificateStatus.PendingActivation)
        {
            return new FirstConnect(FirstConnectOutcome.NotRegistered);
        }

        // AWS's event, published for the registration and whenever a PENDING_ACTIVATION certificate is presented again.
        var now = time.GetUtcNow();
        var payload = System.Text.Json.JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["certificateId"] = id,
            ["caCertificateId"] = caId,
            ["timestamp"] = now.ToUnixTimeMilliseconds(),
            ["certificateStatus"] = CertificateStatus.PendingActivation,
            ["awsAccountId"] = registry.Value.AccountId,
            ["certificateRegistrationTimestamp"] = existing.CreationDate.ToUnixTimeMilliseconds().ToString(System.Globalization.CultureInfo.InvariantCulture),
        });
        broker.Publish($"$aws/events/certificates/registered/{caId}", payload, 1);

        // JITP: the CA's template provisions the device now, so this very connection can go on (AWS refuses the
        // first one and lets the device retry; waiting gains nothing here, where provisioning takes milliseconds).
        var ca = GrainFactory.GetGrain<ICaCertificateGrain>(caId);
        if (await Provisioning.RegistrationConfigs.TemplateAsync(await ca.GetRegistrationConfig(), caId, GrainFactory) is not { } template)
        {
            return new FirstConnect(FirstConnectOutcome.PendingActivation);
        }

        var answer = await GrainFactory.GetGrain<Abstractions.Provisioning.IFleetProvisioningGrain>(0).ProvisionJustInTime(certificatePem, template.Name, template.Body);
        return answer.Accepted
            ? new FirstConnect(FirstConnectOutcome.Provisioned)
            : new FirstConnect(FirstConnectOutcome.PendingActivation, answer.Document);
    }

    public async Task<CertificateInfo> RegisterCa(string caPem, string verificationPem, bool active, bool autoRegistration, RegistrationConfig? registrationConfig)
    {
        using var ca = CertificatePem.Load(caPem, "caCertificate");
        await Provisioning.RegistrationConfigs.CheckAsync(registrationConfig, GrainFactory);   // before anything is registered
        var code = await Ca.RegistrationCode();
        var grain = GrainFactory.GetGrain<ICaCertificateGrain>(CertificateIds.Of(ca));
        var info = await grain.Register(caPem, verificationPem, code, active, autoRegistration);
        if (registrationConfig is not null)
        {
            await grain.SetRegistrationConfig(registrationConfig);
        }

        return info;
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
        await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.ThingPrincipals(thingName)).Add(id);
    }

    public async Task DetachThingPrincipal(string thingName, string principal)
    {
        var id = CertificateIds.FromArn(principal) ?? throw ApiException.Invalid($"Principal '{principal}' is not a certificate ARN.");
        await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.ThingPrincipals(thingName)).Remove(id);
        await GrainFactory.GetGrain<ICertificateGrain>(id).DetachThing(thingName);
    }

    public async Task<IReadOnlyList<string>> ListThingPrincipals(string thingName)
    {
        var (ids, _) = await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.ThingPrincipals(thingName)).Page(null, 10_000);
        return [.. ids.Select(id => registry.Value.Arn($"cert/{id}"))];
    }

    private async Task<IReadOnlyList<string>> RegisteredCasAsync() =>
        (await GrainFactory.GetGrain<INameCatalogGrain>(INameCatalogGrain.CaCertificates).Page(null, 1000)).Names;

    /// <summary>The registered CA among <paramref name="candidates"/> whose key signed the certificate, with its status.</summary>
    private async Task<(string? Id, string? Status, bool AutoRegistration)> FindIssuerAsync(X509Certificate2 certificate, IEnumerable<string> candidates)
    {
        foreach (var candidate in candidates)
        {
            if (await GrainFactory.GetGrain<ICaCertificateGrain>(candidate).Describe() is not { } ca)
            {
                continue;
            }

            using var issuer = X509Certificate2.CreateFromPem(ca.Info.CertificatePem);
            if (CertificatePem.IssuedBy(certificate, issuer))
            {
                return (candidate, ca.Info.Status, ca.AutoRegistration);
            }
        }

        return (null, null, false);
    }

    private async Task<CertificateInfo> RegisterAsync(string pem, string status)
    {
        var (caId, _) = await Ca.Get();
        using var certificate = X509Certificate2.CreateFromPem(pem);
        var id = CertificateIds.Of(certificate);
        return await GrainFactory.GetGrain<ICertificateGrain>(id).Register(pem, caId, status);
    }
}
