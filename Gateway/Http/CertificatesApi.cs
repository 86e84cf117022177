using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Control plane: the platform CA (<c>GET /api/cacertificate</c>, for devices to trust) and certificates with AWS's
/// paths and shapes: <c>CreateKeysAndCertificate</c> (<c>POST /api/keys-and-certificate?setAsActive=</c>),
/// <c>CreateCertificateFromCsr</c> (<c>POST /api/certificates</c>), <c>DescribeCertificate</c>, <c>ListCertificates</c>,
/// <c>UpdateCertificate</c> (<c>PUT /api/certificates/{id}?newStatus=</c>), <c>DeleteCertificate</c>, and thing principals
/// (<c>AttachThingPrincipal</c>/<c>DetachThingPrincipal</c>/<c>ListThingPrincipals</c> on <c>/api/things/{name}/principals</c>
/// with the <c>x-amzn-principal</c> header).
/// </summary>
public static class CertificatesApi
{
    public static IEndpointRouteBuilder MapCertificatesApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("").WithTags("Certificates").ChangedBy(ApiKeyRoles.Admin);
        api.MapGet("/cacertificate", GetPlatformCaAsync).WithName("GetPlatformCaCertificate");
        api.MapGet("/registrationcode", GetRegistrationCodeAsync).WithName("GetRegistrationCode");
        api.MapPost("/cacertificate", RegisterCaAsync).WithName("RegisterCACertificate");
        api.MapGet("/cacertificate/{caCertificateId}", DescribeCaAsync).WithName("DescribeCACertificate");
        api.MapGet("/cacertificates", ListCasAsync).WithName("ListCACertificates");
        api.MapPut("/cacertificate/{caCertificateId}", UpdateCaAsync).WithName("UpdateCACertificate").WithMetadata(new OptionalBody(typeof(UpdateCaBody)));
        api.MapDelete("/cacertificate/{caCertificateId}", DeleteCaAsync).WithName("DeleteCACertificate");
        api.MapPost("/certificate/register", (RegisterCertificateBody body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context) =>
            RegisterAsync(body, grains, o, context, withoutCa: false)).WithName("RegisterCertificate");
        api.MapPost("/certificate/register-no-ca", (RegisterCertificateBody body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context) =>
            RegisterAsync(body, grains, o, context, withoutCa: true)).WithName("RegisterCertificateWithoutCA");
        api.MapPost("/keys-and-certificate", CreateKeysAndCertificateAsync).WithName("CreateKeysAndCertificate");
        api.MapPost("/certificates", CreateFromCsrAsync).WithName("CreateCertificateFromCsr");
        api.MapGet("/certificates/{certificateId}", DescribeAsync).WithName("DescribeCertificate");
        api.MapGet("/certificates", ListAsync).WithName("ListCertificates");
        api.MapPut("/certificates/{certificateId}", UpdateAsync).WithName("UpdateCertificate");
        api.MapDelete("/certificates/{certificateId}", DeleteAsync).WithName("DeleteCertificate");
        api.MapPut("/things/{thingName}/principals", AttachThingPrincipalAsync).WithName("AttachThingPrincipal");
        api.MapDelete("/things/{thingName}/principals", DetachThingPrincipalAsync).WithName("DetachThingPrincipal");
        api.MapGet("/things/{thingName}/principals", ListThingPrincipalsAsync).WithName("ListThingPrincipals");
        return endpoints;
    }

    // ---- requests ----

    public sealed record RegistrationConfigBody(string? TemplateBody, string? TemplateName, string? RoleArn);

    public sealed record RegisterCaBody(string? CaCertificate, string? VerificationCertificate, RegistrationConfigBody? RegistrationConfig);

    public sealed record UpdateCaBody(RegistrationConfigBody? RegistrationConfig, bool? RemoveAutoRegistration);

    public sealed record RegisterCertificateBody(string? CertificatePem, string? CaCertificatePem, string? Status);

    public sealed record CreateFromCsrBody(string? CertificateSigningRequest);

    public sealed record ListCertificatesRequest(string? Marker, int? PageSize);

    /// <summary>AWS's principal header of AttachThingPrincipal, DetachThingPrincipal.</summary>
    public sealed record ThingPrincipalRequest(string ThingName, [property: FromHeader(Name = "x-amzn-principal")] string? Principal);

    // ---- responses ----

    public sealed record PlatformCaResponse(string CertificateId, string CertificatePem, string Status);

    public sealed record RegistrationCodeResponse(string RegistrationCode);

    public sealed record CertificateArnAndId(string CertificateArn, string CertificateId);

    public sealed record Validity(long NotBefore, long NotAfter);

    public sealed record CertificateDescription(
        string CertificateArn, string CertificateId, string? CaCertificateId, string Status, string CertificatePem, string OwnedBy,
        long CreationDate, long LastModifiedDate, Validity Validity, string GenerationId);

    public sealed record DescribeCertificateResponse(CertificateDescription CertificateDescription);

    public sealed record CaCertificateDescription(
        string CertificateArn, string CertificateId, string Status, string CertificatePem, string OwnedBy,
        long CreationDate, long LastModifiedDate, Validity Validity, string GenerationId, string AutoRegistrationStatus);

    public sealed record RegistrationConfigResponse(string? TemplateBody, string? TemplateName, string? RoleArn);

    public sealed record DescribeCaCertificateResponse(
        CaCertificateDescription CertificateDescription,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] RegistrationConfigResponse? RegistrationConfig);

    public sealed record CertificateSummary(string CertificateArn, string CertificateId, string Status, long CreationDate);

    public sealed record ListCaCertificatesResponse(IReadOnlyList<CertificateSummary> Certificates);

    public sealed record ListCertificatesResponse(IReadOnlyList<CertificateSummary> Certificates, string? NextMarker);

    /// <summary>AWS spells these two with capitals.</summary>
    public sealed record KeyPair([property: JsonPropertyName("PublicKey")] string PublicKey, [property: JsonPropertyName("PrivateKey")] string PrivateKey);

    public sealed record CreateKeysAndCertificateResponse(string CertificateArn, string CertificateId, string CertificatePem, KeyPair KeyPair);

    public sealed record CreateFromCsrResponse(string CertificateArn, string CertificateId, string CertificatePem);

    public sealed record ListThingPrincipalsResponse(IReadOnlyList<string> Principals);

    // ---- CAs ----

    private static async Task<Ok<PlatformCaResponse>> GetPlatformCaAsync(IGrainFactory grains)
    {
        var (id, pem) = await grains.GetGrain<ICertificateAuthorityGrain>(ICertificateAuthorityGrain.Key).Get();
        return TypedResults.Ok(new PlatformCaResponse(id, pem, CertificateStatus.Active));
    }

    private static async Task<Ok<RegistrationCodeResponse>> GetRegistrationCodeAsync(IGrainFactory grains) =>
        TypedResults.Ok(new RegistrationCodeResponse(await grains.GetGrain<ICertificateAuthorityGrain>(ICertificateAuthorityGrain.Key).RegistrationCode()));

    private static async Task<Ok<CertificateArnAndId>> RegisterCaAsync(
        bool? setAsActive, bool? allowAutoRegistration, RegisterCaBody body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context)
    {
        var info = await grains.GetGrain<ICertificateServiceGrain>(0).RegisterCa(
            Required(body.CaCertificate, "caCertificate", "PEM"), Required(body.VerificationCertificate, "verificationCertificate", "PEM"),
            setAsActive ?? false, allowAutoRegistration ?? false, Config(body.RegistrationConfig));
        AuditApi.Target(context, $"caCertificateId={info.CertificateId}");
        return TypedResults.Ok(new CertificateArnAndId(o.Value.Arn($"cacert/{info.CertificateId}"), info.CertificateId));
    }

    private static async Task<Ok<DescribeCaCertificateResponse>> DescribeCaAsync(string caCertificateId, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var grain = grains.GetGrain<ICaCertificateGrain>(caCertificateId);
        var ca = await grain.Describe() ?? throw ApiException.NotFound($"CA certificate {caCertificateId} cannot be found.");
        var c = ca.Info;
        var description = new CaCertificateDescription(
            o.Value.Arn($"cacert/{c.CertificateId}"), c.CertificateId, c.Status, c.CertificatePem, o.Value.AccountId, c.CreationDate.ToUnixTimeSeconds(),
            c.LastModifiedDate.ToUnixTimeSeconds(), ValidityOf(c), c.GenerationId, ca.AutoRegistration ? "ENABLE" : "DISABLE");
        var configuration = await grain.GetRegistrationConfig();
        return TypedResults.Ok(new DescribeCaCertificateResponse(
            description, configuration is null ? null : new RegistrationConfigResponse(configuration.TemplateBody, configuration.TemplateName, configuration.RoleArn)));
    }

    private static async Task<Ok<ListCaCertificatesResponse>> ListCasAsync(IGrainFactory grains, IOptions<RegistryOptions> o) =>
        TypedResults.Ok(new ListCaCertificatesResponse([.. (await grains.GetGrain<ICertificateServiceGrain>(0).ListCas())
            .Select(c => new CertificateSummary(o.Value.Arn($"cacert/{c.CertificateId}"), c.CertificateId, c.Status, c.CreationDate.ToUnixTimeSeconds()))]));

    /// <summary>AWS's body is optional: <c>{"registrationConfig": {...}, "removeAutoRegistration": true}</c>.</summary>
    private static async Task<Ok<EmptyResponse>> UpdateCaAsync(
        string caCertificateId, string? newStatus, string? newAutoRegistrationStatus, HttpRequest request, IGrainFactory grains)
    {
        var body = await OptionalBody.ReadAsync<UpdateCaBody>(request);
        bool? auto = newAutoRegistrationStatus switch
        {
            null => null,
            "ENABLE" => true,
            "DISABLE" => false,
            _ => throw ApiException.Invalid("newAutoRegistrationStatus must be ENABLE or DISABLE."),
        };
        var ca = grains.GetGrain<ICaCertificateGrain>(caCertificateId);
        if (body?.RemoveAutoRegistration == true)
        {
            await ca.SetRegistrationConfig(null);
        }
        else if (Config(body?.RegistrationConfig) is { } configuration)
        {
            await ca.SetRegistrationConfig(configuration);
        }

        await ca.Update(newStatus, auto);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DeleteCaAsync(string caCertificateId, IGrainFactory grains)
    {
        await grains.GetGrain<ICaCertificateGrain>(caCertificateId).Delete();
        return EmptyResponse.Ok;
    }

    // ---- device certificates ----

    private static async Task<Ok<CertificateArnAndId>> RegisterAsync(RegisterCertificateBody body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context, bool withoutCa)
    {
        var info = await grains.GetGrain<ICertificateServiceGrain>(0).Register(
            Required(body.CertificatePem, "certificatePem", "PEM"), body.CaCertificatePem, body.Status ?? CertificateStatus.Inactive, withoutCa);
        AuditApi.Target(context, $"certificateId={info.CertificateId}");
        return TypedResults.Ok(new CertificateArnAndId(o.Value.Arn($"cert/{info.CertificateId}"), info.CertificateId));
    }

    private static async Task<Ok<CreateKeysAndCertificateResponse>> CreateKeysAndCertificateAsync(bool? setAsActive, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context)
    {
        var created = await grains.GetGrain<ICertificateServiceGrain>(0).CreateKeysAndCertificate(setAsActive == true ? CertificateStatus.Active : CertificateStatus.Inactive);
        AuditApi.Target(context, $"certificateId={created.CertificateId}");
        return TypedResults.Ok(new CreateKeysAndCertificateResponse(
            o.Value.Arn($"cert/{created.CertificateId}"), created.CertificateId, created.CertificatePem, new KeyPair(created.PublicKeyPem, created.PrivateKeyPem)));
    }

    private static async Task<Ok<CreateFromCsrResponse>> CreateFromCsrAsync(bool? setAsActive, CreateFromCsrBody body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context)
    {
        var csr = Required(body.CertificateSigningRequest, "certificateSigningRequest", "a PEM CSR");
        var info = await grains.GetGrain<ICertificateServiceGrain>(0).CreateFromCsr(csr, setAsActive == true ? CertificateStatus.Active : CertificateStatus.Inactive);
        AuditApi.Target(context, $"certificateId={info.CertificateId}");
        return TypedResults.Ok(new CreateFromCsrResponse(o.Value.Arn($"cert/{info.CertificateId}"), info.CertificateId, info.CertificatePem));
    }

    private static async Task<Ok<DescribeCertificateResponse>> DescribeAsync(string certificateId, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var info = await grains.GetGrain<ICertificateGrain>(certificateId).Describe() ?? throw ApiException.NotFound($"Certificate {certificateId} cannot be found.");
        return TypedResults.Ok(new DescribeCertificateResponse(Description(o, info)));
    }

    private static async Task<Ok<ListCertificatesResponse>> ListAsync([AsParameters] ListCertificatesRequest request, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var (certificates, next) = await grains.GetGrain<ICertificateServiceGrain>(0).List(request.Marker, Math.Clamp(request.PageSize ?? 250, 1, 250));
        return TypedResults.Ok(new ListCertificatesResponse(
            [.. certificates.Select(c => new CertificateSummary(o.Value.Arn($"cert/{c.CertificateId}"), c.CertificateId, c.Status, c.CreationDate.ToUnixTimeSeconds()))],
            next));
    }

    private static async Task<Ok<EmptyResponse>> UpdateAsync(string certificateId, string? newStatus, IGrainFactory grains)
    {
        await grains.GetGrain<ICertificateGrain>(certificateId).UpdateStatus(newStatus ?? throw ApiException.Invalid("newStatus is required."));
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DeleteAsync(string certificateId, IGrainFactory grains)
    {
        await grains.GetGrain<ICertificateGrain>(certificateId).Delete();
        return EmptyResponse.Ok;
    }

    // ---- thing principals ----

    private static async Task<Ok<EmptyResponse>> AttachThingPrincipalAsync([AsParameters] ThingPrincipalRequest request, IGrainFactory grains)
    {
        await grains.GetGrain<ICertificateServiceGrain>(0).AttachThingPrincipal(request.ThingName, Principal(request));
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DetachThingPrincipalAsync([AsParameters] ThingPrincipalRequest request, IGrainFactory grains)
    {
        await grains.GetGrain<ICertificateServiceGrain>(0).DetachThingPrincipal(request.ThingName, Principal(request));
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<ListThingPrincipalsResponse>> ListThingPrincipalsAsync(string thingName, IGrainFactory grains) =>
        TypedResults.Ok(new ListThingPrincipalsResponse([.. await grains.GetGrain<ICertificateServiceGrain>(0).ListThingPrincipals(thingName)]));

    private static string Principal(ThingPrincipalRequest request) =>
        request.Principal is { Length: > 0 } principal ? principal : throw ApiException.Invalid("The x-amzn-principal header is required (a certificate ARN).");

    private static string Required(string? value, string name, string what) =>
        value is { Length: > 0 } given ? given : throw ApiException.Invalid($"{name} is required ({what}).");

    private static Validity ValidityOf(CertificateInfo c) => new(c.NotBefore.ToUnixTimeSeconds(), c.NotAfter.ToUnixTimeSeconds());

    private static CertificateDescription Description(IOptions<RegistryOptions> o, CertificateInfo c) => new(
        o.Value.Arn($"cert/{c.CertificateId}"), c.CertificateId, c.CaCertificateId, c.Status, c.CertificatePem, o.Value.AccountId,
        c.CreationDate.ToUnixTimeSeconds(), c.LastModifiedDate.ToUnixTimeSeconds(), ValidityOf(c), c.GenerationId);

    private static RegistrationConfig? Config(RegistrationConfigBody? body) =>
        body is null ? null : new RegistrationConfig(body.TemplateBody, body.TemplateName, body.RoleArn);
}
