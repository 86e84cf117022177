using System.ComponentModel.DataAnnotations;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Certificates;

namespace OrleansIot.Grains.Certificates;

/// <summary>The platform CA's settings, in section <c>Iot:Auth</c> (next to the gateway's <c>AllowAnonymous</c>).</summary>
public sealed class CertificateAuthorityOptions
{
    public const string SectionName = "Iot:Auth";

    /// <summary>The development value of <see cref="CaKeyPassword"/>; a node using it says so at start.</summary>
    public const string DevelopmentCaKeyPassword = "orleans-iot-development-ca-key";

    /// <summary>Encrypts the platform CA's private key where it is stored (PKCS#8, AES-256, PBKDF2).</summary>
    [Required, MinLength(8)]
    public string CaKeyPassword { get; set; } = DevelopmentCaKeyPassword;

    /// <summary>How long certificates the platform CA issues are valid.</summary>
    [Range(1, 36500)]
    public int CertificateValidityDays { get; set; } = 9125;
}

/// <summary>
/// The platform CA (one grain): an ECDSA P-256 CA created on first use and kept in grain storage (PostgreSQL in that
/// mode) with its private key encrypted by <see cref="CertificateAuthorityOptions.CaKeyPassword"/>. Signs device certificates.
/// </summary>
[GrainType("certificate-authority")]
internal sealed partial class CertificateAuthorityGrain(
    [PersistentState("ca", StorageNames.Default)] IPersistentState<CertificateAuthorityState> state,
    IOptions<CertificateAuthorityOptions> options,
    TimeProvider time,
    ILogger<CertificateAuthorityGrain> logger) : Grain, ICertificateAuthorityGrain
{
    private X509Certificate2? _certificate;
    private ECDsa? _key;

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        _key?.Dispose();
        _certificate?.Dispose();
        return Task.CompletedTask;
    }

    public async Task<(string CertificateId, string CertificatePem)> Get()
    {
        await EnsureAsync();
        return (CertificateIds.Of(_certificate!), _certificate!.ExportCertificatePem());
    }

    public async Task<string> RegistrationCode()
    {
        if (state.State.RegistrationCode is null)
        {
            state.State.RegistrationCode = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
            await state.WriteStateAsync();
        }

        return state.State.RegistrationCode;
    }

    public async Task<string> Sign(byte[] subjectPublicKeyInfo, string subject, int validityDays)
    {
        await EnsureAsync();
        return Issue(subjectPublicKeyInfo, new X500DistinguishedName(subject), "1.3.6.1.5.5.7.3.2", null, validityDays);   // TLS client
    }

    public async Task<string> SignServer(byte[] subjectPublicKeyInfo, IReadOnlyList<string> hostNames, int validityDays)
    {
        ArgumentNullException.ThrowIfNull(hostNames);
        await EnsureAsync();
        var names = new SubjectAlternativeNameBuilder();
        foreach (var name in hostNames)
        {
            if (System.Net.IPAddress.TryParse(name, out var address))
            {
                names.AddIpAddress(address);
            }
            else
            {
                names.AddDnsName(name);
            }
        }

        var commonName = hostNames.FirstOrDefault(n => !System.Net.IPAddress.TryParse(n, out _)) ?? "localhost";
        return Issue(subjectPublicKeyInfo, new X500DistinguishedName($"CN={commonName}, O=OrleansIot"), "1.3.6.1.5.5.7.3.1", names.Build(), validityDays);   // TLS server
    }

    private string Issue(byte[] subjectPublicKeyInfo, X500DistinguishedName subject, string usage, X509Extension? alternativeNames, int validityDays)
    {
        var publicKey = PublicKey.CreateFromSubjectPublicKeyInfo(subjectPublicKeyInfo, out _);
        var request = new CertificateRequest(subject, publicKey, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(usage)], false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_certificate!, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        if (alternativeNames is not null)
        {
            request.CertificateExtensions.Add(alternativeNames);
        }

        var now = time.GetUtcNow();
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7F;
        using var issued = request.Create(_certificate!.SubjectName, X509SignatureGenerator.CreateForECDsa(_key!), now.AddMinutes(-5), now.AddDays(validityDays), serial);
        return issued.ExportCertificatePem();
    }

    private async Task EnsureAsync()
    {
        if (_certificate is not null)
        {
            return;
        }

        var password = options.Value.CaKeyPassword;
        if (state.State.CertificatePem is null)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            var request = new CertificateRequest("CN=OrleansIot Platform CA, O=OrleansIot", key, HashAlgorithmName.SHA256);
            request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, true, 0, true));
            request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign | X509KeyUsageFlags.DigitalSignature, true));
            request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
            var now = time.GetUtcNow();
            using var created = request.CreateSelfSigned(now.AddDays(-1), now.AddYears(30));
            state.State.CertificatePem = created.ExportCertificatePem();
            // PBKDF2 with 100,000 iterations (here and at the import below) runs on the thread pool, not in the grain's
            // turn: on a busy machine it stretched the turn past Orleans' 1 s warning (QuietLogTests saw 1.24 s).
            state.State.EncryptedKeyPem = await Task.Run(() => key.ExportEncryptedPkcs8PrivateKeyPem(password,
                new PbeParameters(PbeEncryptionAlgorithm.Aes256Cbc, HashAlgorithmName.SHA256, 100_000)));
            await state.WriteStateAsync();
            var createdId = CertificateIds.Of(created);
            LogCreated(logger, createdId);
        }

        if (password == CertificateAuthorityOptions.DevelopmentCaKeyPassword)
        {
            LogDevelopmentKey(logger);
        }

        var encrypted = state.State.EncryptedKeyPem;
        var imported = ECDsa.Create();
        await Task.Run(() => imported.ImportFromEncryptedPem(encrypted, password));
        _certificate = X509Certificate2.CreateFromPem(state.State.CertificatePem);
        _key = imported;
    }

    [LoggerMessage(EventId = 2001, Level = LogLevel.Information, Message = "Created the platform CA {CertificateId}")]
    private static partial void LogCreated(ILogger logger, string certificateId);

    [LoggerMessage(EventId = 2002, Level = LogLevel.Warning, Message = "The platform CA's private key is stored encrypted with the development password; set Iot:Auth:CaKeyPassword for a real deployment")]
    private static partial void LogDevelopmentKey(ILogger logger);
}

[GenerateSerializer, Alias("OrleansIot.CertificateAuthorityState")]
public sealed class CertificateAuthorityState
{
    [Id(0)] public string? CertificatePem { get; set; }

    [Id(1)] public string EncryptedKeyPem { get; set; } = "";

    [Id(2)] public string? RegistrationCode { get; set; }
}

/// <summary>Certificate ids and ARNs as AWS makes them.</summary>
public static class CertificateIds
{
    /// <summary>The id: lower-case hex SHA-256 of the DER encoding.</summary>
    public static string Of(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Convert.ToHexStringLower(SHA256.HashData(certificate.RawData));
    }

    /// <summary>The id in a certificate ARN (<c>…:cert/&lt;id&gt;</c>), or null when it is none.</summary>
    public static string? FromArn(string arn)
    {
        ArgumentNullException.ThrowIfNull(arn);
        var at = arn.LastIndexOf(":cert/", StringComparison.Ordinal);
        var id = at < 0 || !arn.StartsWith("arn:aws:iot:", StringComparison.Ordinal) ? null : arn[(at + ":cert/".Length)..];
        return id is { Length: 64 } && id.All(char.IsAsciiHexDigitLower) ? id : null;
    }
}
