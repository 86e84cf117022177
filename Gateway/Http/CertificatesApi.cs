using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
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
        var api = endpoints.MapGroup("/api").WithTags("Certificates").ChangedBy(ApiKeyRoles.Admin);
        api.MapGet("/cacertificate", async (IGrainFactory grains) =>
        {
            var (id, pem) = await grains.GetGrain<ICertificateAuthorityGrain>(ICertificateAuthorityGrain.Key).Get();
            return JsonText.Result(new JsonObject { ["certificateId"] = id, ["certificatePem"] = pem, ["status"] = CertificateStatus.Active });
        }).WithName("GetPlatformCaCertificate");
        api.MapGet("/registrationcode", async (IGrainFactory grains) =>
            JsonText.Result(new JsonObject { ["registrationCode"] = await grains.GetGrain<ICertificateAuthorityGrain>(ICertificateAuthorityGrain.Key).RegistrationCode() }))
            .WithName("GetRegistrationCode");
        api.MapPost("/cacertificate", async (bool? setAsActive, bool? allowAutoRegistration, JsonObject body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context) =>
        {
            var info = await grains.GetGrain<ICertificateServiceGrain>(0).RegisterCa(
                JsonText.Required(body, "caCertificate", "PEM"), JsonText.Required(body, "verificationCertificate", "PEM"), setAsActive ?? false, allowAutoRegistration ?? false,
                RegistrationConfigOf(body));
            AuditApi.Target(context, $"caCertificateId={info.CertificateId}");
            return JsonText.Result(new JsonObject { ["certificateArn"] = o.Value.Arn($"cacert/{info.CertificateId}"), ["certificateId"] = info.CertificateId });
        }).WithName("RegisterCACertificate");
        api.MapGet("/cacertificate/{caCertificateId}", async (string caCertificateId, IGrainFactory grains, IOptions<RegistryOptions> o) =>
        {
            if (await grains.GetGrain<ICaCertificateGrain>(caCertificateId).Describe() is not { } ca)
            {
                return Problems.NotFound("ResourceNotFoundException", $"CA certificate {caCertificateId} cannot be found.");
            }

            var description = Description(o, ca.Info);
            description["certificateArn"] = o.Value.Arn($"cacert/{ca.Info.CertificateId}");
            description["autoRegistrationStatus"] = ca.AutoRegistration ? "ENABLE" : "DISABLE";
            description.Remove("caCertificateId");
            var configuration = await grains.GetGrain<ICaCertificateGrain>(caCertificateId).GetRegistrationConfig();
            var answer = new JsonObject { ["certificateDescription"] = description };
            if (configuration is not null)
            {
                answer["registrationConfig"] = new JsonObject
                {
                    ["templateBody"] = configuration.TemplateBody,
                    ["templateName"] = configuration.TemplateName,
                    ["roleArn"] = configuration.RoleArn,
                };
            }

            return JsonText.Result(answer);
        }).WithName("DescribeCACertificate");
        api.MapGet("/cacertificates", async (IGrainFactory grains, IOptions<RegistryOptions> o) =>
            JsonText.Result(new JsonObject
            {
                ["certificates"] = new JsonArray([.. (await grains.GetGrain<ICertificateServiceGrain>(0).ListCas()).Select(c => (JsonNode?)new JsonObject
                {
                    ["certificateArn"] = o.Value.Arn($"cacert/{c.CertificateId}"),
                    ["certificateId"] = c.CertificateId,
                    ["status"] = c.Status,
                    ["creationDate"] = c.CreationDate.ToUnixTimeSeconds(),
                })]),
            })).WithName("ListCACertificates");
        api.MapPut("/cacertificate/{caCertificateId}", async (string caCertificateId, string? newStatus, string? newAutoRegistrationStatus, HttpRequest request, IGrainFactory grains) =>
        {
            // AWS's body is optional: {"registrationConfig": {...}, "removeAutoRegistration": true}.
            var body = request.ContentLength is > 0 ? await request.ReadFromJsonAsync<JsonObject>() : null;
            bool? auto = newAutoRegistrationStatus switch
            {
                null => null,
                "ENABLE" => true,
                "DISABLE" => false,
                _ => throw ApiException.Invalid("newAutoRegistrationStatus must be ENABLE or DISABLE."),
            };
            var ca = grains.GetGrain<ICaCertificateGrain>(caCertificateId);
            if (body is not null && JsonText.Flag(body, "removeAutoRegistration") == true)
            {
                await ca.SetRegistrationConfig(null);
            }
            else if (body is not null && RegistrationConfigOf(body) is { } configuration)
            {
                await ca.SetRegistrationConfig(configuration);
            }

            await ca.Update(newStatus, auto);
            return TypedResults.Ok(new { });
        }).WithName("UpdateCACertificate");
        api.MapDelete("/cacertificate/{caCertificateId}", async (string caCertificateId, IGrainFactory grains) =>
        {
            await grains.GetGrain<ICaCertificateGrain>(caCertificateId).Delete();
            return TypedResults.Ok(new { });
        }).WithName("DeleteCACertificate");
        api.MapPost("/certificate/register", (JsonObject body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context) => RegisterAsync(body, grains, o, context, withoutCa: false)).WithName("RegisterCertificate");
        api.MapPost("/certificate/register-no-ca", (JsonObject body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context) => RegisterAsync(body, grains, o, context, withoutCa: true)).WithName("RegisterCertificateWithoutCA");
        api.MapPost("/keys-and-certificate", async (bool? setAsActive, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context) =>
        {
            var created = await grains.GetGrain<ICertificateServiceGrain>(0).CreateKeysAndCertificate(setAsActive == true ? CertificateStatus.Active : CertificateStatus.Inactive);
            AuditApi.Target(context, $"certificateId={created.CertificateId}");
            return JsonText.Result(new JsonObject
            {
                ["certificateArn"] = o.Value.Arn($"cert/{created.CertificateId}"),
                ["certificateId"] = created.CertificateId,
                ["certificatePem"] = created.CertificatePem,
                ["keyPair"] = new JsonObject { ["PublicKey"] = created.PublicKeyPem, ["PrivateKey"] = created.PrivateKeyPem },
            });
        }).WithName("CreateKeysAndCertificate");
        api.MapPost("/certificates", async (bool? setAsActive, JsonObject body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context) =>
        {
            var csr = JsonText.Required(body, "certificateSigningRequest", "a PEM CSR");
            var info = await grains.GetGrain<ICertificateServiceGrain>(0).CreateFromCsr(csr, setAsActive == true ? CertificateStatus.Active : CertificateStatus.Inactive);
            AuditApi.Target(context, $"certificateId={info.CertificateId}");
            return JsonText.Result(new JsonObject
            {
                ["certificateArn"] = o.Value.Arn($"cert/{info.CertificateId}"),
                ["certificateId"] = info.CertificateId,
                ["certificatePem"] = info.CertificatePem,
            });
        }).WithName("CreateCertificateFromCsr");
        api.MapGet("/certificates/{certificateId}", async (string certificateId, IGrainFactory grains, IOptions<RegistryOptions> o) =>
            await grains.GetGrain<ICertificateGrain>(certificateId).Describe() is { } info
                ? JsonText.Result(new JsonObject { ["certificateDescription"] = Description(o, info) })
                : Problems.NotFound("ResourceNotFoundException", $"Certificate {certificateId} cannot be found.")).WithName("DescribeCertificate");
        api.MapGet("/certificates", async (string? marker, int? pageSize, IGrainFactory grains, IOptions<RegistryOptions> o) =>
        {
            var (certificates, next) = await grains.GetGrain<ICertificateServiceGrain>(0).List(marker, Math.Clamp(pageSize ?? 250, 1, 250));
            return JsonText.Result(new JsonObject
            {
                ["certificates"] = new JsonArray([.. certificates.Select(c => (JsonNode?)new JsonObject
                {
                    ["certificateArn"] = o.Value.Arn($"cert/{c.CertificateId}"),
                    ["certificateId"] = c.CertificateId,
                    ["status"] = c.Status,
                    ["creationDate"] = c.CreationDate.ToUnixTimeSeconds(),
                })]),
                ["nextMarker"] = next,
            });
        }).WithName("ListCertificates");
        api.MapPut("/certificates/{certificateId}", async (string certificateId, string? newStatus, IGrainFactory grains) =>
        {
            await grains.GetGrain<ICertificateGrain>(certificateId).UpdateStatus(newStatus ?? throw ApiException.Invalid("newStatus is required."));
            return TypedResults.Ok(new { });
        }).WithName("UpdateCertificate");
        api.MapDelete("/certificates/{certificateId}", async (string certificateId, IGrainFactory grains) =>
        {
            await grains.GetGrain<ICertificateGrain>(certificateId).Delete();
            return TypedResults.Ok(new { });
        }).WithName("DeleteCertificate");
        api.MapPut("/things/{thingName}/principals", async (string thingName, HttpRequest request, IGrainFactory grains) =>
        {
            await grains.GetGrain<ICertificateServiceGrain>(0).AttachThingPrincipal(thingName, Principal(request));
            return TypedResults.Ok(new { });
        }).WithName("AttachThingPrincipal");
        api.MapDelete("/things/{thingName}/principals", async (string thingName, HttpRequest request, IGrainFactory grains) =>
        {
            await grains.GetGrain<ICertificateServiceGrain>(0).DetachThingPrincipal(thingName, Principal(request));
            return TypedResults.Ok(new { });
        }).WithName("DetachThingPrincipal");
        api.MapGet("/things/{thingName}/principals", async (string thingName, IGrainFactory grains) =>
            JsonText.Result(new JsonObject { ["principals"] = new JsonArray([.. (await grains.GetGrain<ICertificateServiceGrain>(0).ListThingPrincipals(thingName)).Select(p => (JsonNode?)p)]) }))
            .WithName("ListThingPrincipals");
        return endpoints;
    }

    private static async Task<IResult> RegisterAsync(JsonObject body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context, bool withoutCa)
    {
        var info = await grains.GetGrain<ICertificateServiceGrain>(0).Register(
            JsonText.Required(body, "certificatePem", "PEM"), JsonText.Field(body, "caCertificatePem"), JsonText.Field(body, "status") ?? CertificateStatus.Inactive, withoutCa);
        AuditApi.Target(context, $"certificateId={info.CertificateId}");
        return JsonText.Result(new JsonObject { ["certificateArn"] = o.Value.Arn($"cert/{info.CertificateId}"), ["certificateId"] = info.CertificateId });
    }

    private static string Principal(HttpRequest request) =>
        request.Headers["x-amzn-principal"].ToString() is { Length: > 0 } principal
            ? principal
            : throw ApiException.Invalid("The x-amzn-principal header is required (a certificate ARN).");

    private static JsonObject Description(IOptions<RegistryOptions> o, CertificateInfo c) => new()
    {
        ["certificateArn"] = o.Value.Arn($"cert/{c.CertificateId}"),
        ["certificateId"] = c.CertificateId,
        ["caCertificateId"] = c.CaCertificateId,
        ["status"] = c.Status,
        ["certificatePem"] = c.CertificatePem,
        ["ownedBy"] = o.Value.AccountId,
        ["creationDate"] = c.CreationDate.ToUnixTimeSeconds(),
        ["lastModifiedDate"] = c.LastModifiedDate.ToUnixTimeSeconds(),
        ["validity"] = new JsonObject { ["notBefore"] = c.NotBefore.ToUnixTimeSeconds(), ["notAfter"] = c.NotAfter.ToUnixTimeSeconds() },
        ["generationId"] = c.GenerationId,
    };

    /// <summary>AWS's <c>registrationConfig</c> (<c>templateBody</c>, <c>templateName</c>, <c>roleArn</c>), when the body has one.</summary>
    private static RegistrationConfig? RegistrationConfigOf(JsonObject body) =>
        body["registrationConfig"] switch
        {
            null => null,
            JsonObject config => new RegistrationConfig(JsonText.Field(config, "templateBody"), JsonText.Field(config, "templateName"), JsonText.Field(config, "roleArn")),
            _ => throw ApiException.Invalid("registrationConfig must be an object."),
        };
}
