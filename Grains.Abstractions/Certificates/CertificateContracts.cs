namespace OrleansIot.Grains.Abstractions.Certificates;

/// <summary>AWS's certificate states.</summary>
public static class CertificateStatus
{
    /// <summary>May authenticate.</summary>
    public const string Active = "ACTIVE";

    /// <summary>Registered, not usable until activated.</summary>
    public const string Inactive = "INACTIVE";

    /// <summary>Withdrawn for good.</summary>
    public const string Revoked = "REVOKED";

    /// <summary>Registered by the platform (JITR, fleet provisioning), waiting to be activated.</summary>
    public const string PendingActivation = "PENDING_ACTIVATION";

    /// <summary>The states UpdateCertificate accepts.</summary>
    public static readonly IReadOnlyList<string> Settable = [Active, Inactive, Revoked];
}

/// <summary>A registered certificate (AWS <c>DescribeCertificate</c>'s <c>certificateDescription</c>).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.CertificateInfo")]
public sealed record CertificateInfo(
    [property: Id(0)] string CertificateId,
    [property: Id(1)] string CertificatePem,
    [property: Id(2)] string Status,
    [property: Id(3)] string? CaCertificateId,
    [property: Id(4)] DateTimeOffset CreationDate,
    [property: Id(5)] DateTimeOffset LastModifiedDate,
    [property: Id(6)] DateTimeOffset NotBefore,
    [property: Id(7)] DateTimeOffset NotAfter,
    [property: Id(8)] string GenerationId,
    [property: Id(9)] IReadOnlyList<string> Things);

/// <summary>What <c>CreateKeysAndCertificate</c> returns: the private key once; it is never stored.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.CreatedKeysAndCertificate")]
public sealed record CreatedKeysAndCertificate(
    [property: Id(0)] string CertificateId,
    [property: Id(1)] string CertificatePem,
    [property: Id(2)] string PublicKeyPem,
    [property: Id(3)] string PrivateKeyPem);

/// <summary>
/// A CA's just-in-time provisioning (AWS <c>registrationConfig</c>): a template body, or the name of a provisioning
/// template; the role is kept and shown, as there are no IAM roles here.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.RegistrationConfig")]
public sealed record RegistrationConfig(
    [property: Id(0)] string? TemplateBody,
    [property: Id(1)] string? TemplateName,
    [property: Id(2)] string? RoleArn);

/// <summary>What a device's first connection with an unregistered certificate (or a PENDING_ACTIVATION one) led to.</summary>
public enum FirstConnectOutcome
{
    /// <summary>No ACTIVE registered CA with auto-registration signed it: the certificate stays unknown.</summary>
    NotRegistered,

    /// <summary>JITR: registered PENDING_ACTIVATION (the event published), waiting for someone to activate it.</summary>
    PendingActivation,

    /// <summary>JITP: the CA's template ran; the certificate is ACTIVE with its thing and policies.</summary>
    Provisioned,
}

/// <summary>The outcome, and for a provisioning that failed, why.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.FirstConnect")]
public sealed record FirstConnect(
    [property: Id(0)] FirstConnectOutcome Outcome,
    [property: Id(1)] string? Problem = null);

/// <summary>The platform CA: devices trust it; it signs device certificates (and the server certificate when none is configured).</summary>
[Alias("OrleansIot.ICertificateAuthorityGrain")]
public interface ICertificateAuthorityGrain : IGrainWithStringKey
{
    /// <summary>The one platform CA's key.</summary>
    public const string Key = "platform";

    /// <summary>The CA certificate: its id (hex SHA-256 of DER) and PEM. Created on first use.</summary>
    [Alias("Get")]
    Task<(string CertificateId, string CertificatePem)> Get();

    /// <summary>AWS <c>GetRegistrationCode</c>: the account's code, the common name of a CA's verification certificate.</summary>
    [Alias("RegistrationCode")]
    Task<string> RegistrationCode();

    /// <summary>Signs a certificate for a public key (SubjectPublicKeyInfo, DER) with the given subject.</summary>
    [Alias("Sign")]
    Task<string> Sign(byte[] subjectPublicKeyInfo, string subject, int validityDays);

    /// <summary>
    /// Signs a TLS server certificate for a node's own key (the key never leaves the node) naming
    /// <paramref name="hostNames"/> (DNS names or IP addresses).
    /// </summary>
    [Alias("SignServer")]
    Task<string> SignServer(byte[] subjectPublicKeyInfo, IReadOnlyList<string> hostNames, int validityDays);
}

/// <summary>One certificate (key: its id): status, the things it is attached to.</summary>
[Alias("OrleansIot.ICertificateGrain")]
public interface ICertificateGrain : IGrainWithStringKey
{
    /// <summary>Stores the certificate (its id must be this grain's key); <c>ResourceAlreadyExistsException</c> if registered.</summary>
    [Alias("Register")]
    Task<CertificateInfo> Register(string certificatePem, string? caCertificateId, string status);

    /// <summary>The certificate, or null.</summary>
    [Alias("Describe"), Orleans.Concurrency.ReadOnly]
    Task<CertificateInfo?> Describe();

    /// <summary>AWS <c>UpdateCertificate</c>: ACTIVE, INACTIVE or REVOKED (a revoked one cannot come back).</summary>
    [Alias("UpdateStatus")]
    Task UpdateStatus(string status);

    /// <summary>AWS <c>DeleteCertificate</c>: refused while ACTIVE (<c>CertificateStateException</c>) or attached (<c>DeleteConflictException</c>).</summary>
    [Alias("Delete")]
    Task Delete();

    /// <summary>
    /// Fleet provisioning: gives the (PENDING_ACTIVATION) certificate an ownership token valid until
    /// <paramref name="expires"/>; only its SHA-256 is kept.
    /// </summary>
    [Alias("SetOwnershipToken")]
    Task SetOwnershipToken(byte[] tokenHash, DateTimeOffset expires);

    /// <summary>
    /// Whether <paramref name="tokenHash"/> is this certificate's unexpired ownership token; with
    /// <paramref name="spend"/>, it cannot be used again.
    /// </summary>
    [Alias("ClaimOwnership")]
    Task<bool> ClaimOwnership(byte[] tokenHash, bool spend);

    /// <summary>Records that a thing has this certificate as principal.</summary>
    [Alias("AttachThing")]
    Task AttachThing(string thingName);

    /// <summary>Forgets that.</summary>
    [Alias("DetachThing")]
    Task DetachThing(string thingName);
}

/// <summary>Certificate operations that are not about one existing certificate; any node answers.</summary>
[Alias("OrleansIot.ICertificateServiceGrain")]
public interface ICertificateServiceGrain : IGrainWithIntegerKey
{
    /// <summary>AWS <c>CreateKeysAndCertificate</c>: a new key pair and a certificate from the platform CA (ACTIVE, INACTIVE or PENDING_ACTIVATION).</summary>
    [Alias("CreateKeysAndCertificate")]
    Task<CreatedKeysAndCertificate> CreateKeysAndCertificate(string status);

    /// <summary>AWS <c>CreateCertificateFromCsr</c>: signs the CSR's key (its signature checked) with the platform CA.</summary>
    [Alias("CreateFromCsr")]
    Task<CertificateInfo> CreateFromCsr(string csrPem, string status);

    /// <summary>
    /// AWS <c>RegisterCertificate</c> (a device certificate signed by a registered, ACTIVE CA; <paramref name="caPem"/>
    /// names it, else the registered CAs are tried) or, with <paramref name="withoutCa"/>,
    /// <c>RegisterCertificateWithoutCA</c>. Expired or not-yet-valid certificates are refused.
    /// </summary>
    [Alias("Register")]
    Task<CertificateInfo> Register(string certificatePem, string? caPem, string status, bool withoutCa);

    /// <summary>
    /// A device presented <paramref name="certificatePem"/>, unknown or PENDING_ACTIVATION. When an ACTIVE registered
    /// CA with auto-registration signed it, it is registered as PENDING_ACTIVATION (if it was not) and the event is
    /// published on <c>$aws/events/certificates/registered/{caCertificateId}</c> (JITR); when that CA has a
    /// registration config, its template then provisions the device and activates the certificate (JITP).
    /// </summary>
    [Alias("RegisterOnFirstConnect")]
    Task<FirstConnect> RegisterOnFirstConnect(string certificatePem);

    /// <summary>AWS <c>RegisterCACertificate</c> with proof of possession, and its JITP template if any (checked first).</summary>
    [Alias("RegisterCaWithConfig")]
    Task<CertificateInfo> RegisterCa(string caPem, string verificationPem, bool active, bool autoRegistration, RegistrationConfig? registrationConfig);

    /// <summary>AWS <c>ListCACertificates</c>.</summary>
    [Alias("ListCas")]
    Task<IReadOnlyList<CertificateInfo>> ListCas();

    /// <summary>AWS <c>ListCertificates</c>: ids in order, paged by marker.</summary>
    [Alias("List")]
    Task<(IReadOnlyList<CertificateInfo> Certificates, string? NextMarker)> List(string? marker, int pageSize);

    /// <summary>AWS <c>AttachThingPrincipal</c>: the thing must exist and the principal be a registered certificate.</summary>
    [Alias("AttachThingPrincipal")]
    Task AttachThingPrincipal(string thingName, string principal);

    /// <summary>AWS <c>DetachThingPrincipal</c>.</summary>
    [Alias("DetachThingPrincipal")]
    Task DetachThingPrincipal(string thingName, string principal);

    /// <summary>AWS <c>ListThingPrincipals</c>: the certificate ARNs attached to the thing.</summary>
    [Alias("ListThingPrincipals")]
    Task<IReadOnlyList<string>> ListThingPrincipals(string thingName);
}

/// <summary>A CA registered by its owner (AWS <c>RegisterCACertificate</c>), key: its id.</summary>
[Alias("OrleansIot.ICaCertificateGrain")]
public interface ICaCertificateGrain : IGrainWithStringKey
{
    /// <summary>Registers the CA after checking it is a CA and that the verification certificate (CN = the registration code) is signed by its key.</summary>
    [Alias("Register")]
    Task<CertificateInfo> Register(string caPem, string verificationPem, string registrationCode, bool active, bool autoRegistration);

    /// <summary>The CA and whether it auto-registers (JITR), or null.</summary>
    [Alias("Describe"), Orleans.Concurrency.ReadOnly]
    Task<(CertificateInfo Info, bool AutoRegistration)?> Describe();

    /// <summary>AWS <c>UpdateCACertificate</c>.</summary>
    [Alias("Update")]
    Task Update(string? newStatus, bool? autoRegistration);

    /// <summary>Sets (or, with <c>null</c>, removes) the JITP template; <c>InvalidRequestException</c> for a bad one.</summary>
    [Alias("SetRegistrationConfig")]
    Task SetRegistrationConfig(RegistrationConfig? config);

    /// <summary>The JITP template, or <c>null</c>.</summary>
    [Alias("GetRegistrationConfig"), Orleans.Concurrency.ReadOnly]
    Task<RegistrationConfig?> GetRegistrationConfig();

    /// <summary>AWS <c>DeleteCACertificate</c>: refused while ACTIVE.</summary>
    [Alias("Delete")]
    Task Delete();
}
