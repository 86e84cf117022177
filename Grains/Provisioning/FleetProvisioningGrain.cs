using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Provisioning;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Grains.Provisioning;

/// <summary>Fleet provisioning by claim on any node.</summary>
[GrainType("fleet-provisioning"), Orleans.Concurrency.StatelessWorker]
internal sealed class FleetProvisioningGrain(IOptions<RegistryOptions> registry, IOptions<ProvisioningOptions> options, TimeProvider time) : Grain, IFleetProvisioningGrain
{
    private ICertificateServiceGrain Certificates => GrainFactory.GetGrain<ICertificateServiceGrain>(0);

    public async Task<IReadOnlyList<ProvisioningTemplateInfo>> ListTemplates()
    {
        var (names, _) = await GrainFactory.GetGrain<Catalogs.INameCatalogGrain>(Catalogs.INameCatalogGrain.ProvisioningTemplates).Page(null, 1000);
        var templates = await Task.WhenAll(names.Select(n => GrainFactory.GetGrain<IProvisioningTemplateGrain>(n).Describe()));
        return [.. templates.OfType<ProvisioningTemplateInfo>()];
    }

    public Task<ProvisioningAnswer> CreateKeysAndCertificate() => AnswerAsync(async () =>
    {
        var created = await Certificates.CreateKeysAndCertificate(CertificateStatus.PendingActivation);
        return new JsonObject
        {
            ["certificateId"] = created.CertificateId,
            ["certificatePem"] = created.CertificatePem,
            ["privateKey"] = created.PrivateKeyPem,
            ["certificateOwnershipToken"] = await NewOwnershipTokenAsync(created.CertificateId),
        };
    });

    public Task<ProvisioningAnswer> CreateCertificateFromCsr(byte[] request) => AnswerAsync(async () =>
    {
        var csr = Read(request)["certificateSigningRequest"] is JsonValue value && value.GetValueKind() == JsonValueKind.String
            ? (string)value!
            : throw new ApiException(400, "InvalidCertificateSigningRequest", "certificateSigningRequest is required.");
        var info = await Certificates.CreateFromCsr(csr, CertificateStatus.PendingActivation);
        return new JsonObject
        {
            ["certificateOwnershipToken"] = await NewOwnershipTokenAsync(info.CertificateId),
            ["certificateId"] = info.CertificateId,
            ["certificatePem"] = info.CertificatePem,
        };
    });

    public Task<ProvisioningAnswer> RegisterThing(string templateName, byte[] request) => AnswerAsync(async () =>
    {
        var body = Read(request);
        var token = body["certificateOwnershipToken"] is JsonValue t && t.GetValueKind() == JsonValueKind.String ? (string)t! : "";
        if (token.Length == 0)
        {
            throw new ApiException(400, "InvalidCertificateOwnershipToken", "Certificate ownership token cannot be empty.");
        }

        var certificateId = token.Split('.')[0];
        var hash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token));
        var certificate = GrainFactory.GetGrain<ICertificateGrain>(certificateId.Length == 64 ? certificateId : "none");
        if (certificateId.Length != 64 || !await certificate.ClaimOwnership(hash, spend: false))
        {
            throw new ApiException(400, "InvalidCertificateOwnershipToken", "Certificate ownership token is invalid or expired.");
        }

        var template = await GrainFactory.GetGrain<IProvisioningTemplateGrain>(templateName).Describe()
            ?? throw new ApiException(404, "ResourceNotFoundException", $"Provisioning template {templateName} cannot be found.");
        if (!template.Enabled)
        {
            throw new ApiException(400, "InvalidRequestException", $"Provisioning template {templateName} is disabled.");
        }

        var parameters = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in body["parameters"] as JsonObject ?? [])
        {
            parameters[key] = value is JsonValue v && v.GetValueKind() == JsonValueKind.String ? (string)v! : value?.ToJsonString() ?? "";
        }

        var plan = ProvisioningTemplate.Parse(template.TemplateBody).Evaluate(parameters, certificateId);
        var arn = registry.Value.Arn($"cert/{certificateId}");
        if (plan.Thing is { } thing)
        {
            var grain = GrainFactory.GetGrain<IThingGrain>(thing.Name);
            if (await grain.DescribeThing() is null)
            {
                await grain.CreateThing(thing.TypeName, thing.Attributes);
            }

            foreach (var group in thing.Groups)
            {
                await grain.AddToThingGroup(group);
            }

            await Certificates.AttachThingPrincipal(thing.Name, arn);
        }

        if (plan.PolicyName is not null || plan.PolicyDocument is not null)
        {
            var policyName = plan.PolicyName ?? $"{templateName}-{Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(plan.PolicyDocument!)))[..16]}";
            var policy = GrainFactory.GetGrain<IPolicyGrain>(policyName);
            if (plan.PolicyName is null && await policy.Get() is null)
            {
                await policy.Create(plan.PolicyDocument!);
            }

            await policy.Attach(arn);
        }

        await certificate.UpdateStatus(plan.CertificateStatus ?? CertificateStatus.Active);
        await certificate.ClaimOwnership(hash, spend: true);
        var configuration = new JsonObject();
        foreach (var (key, value) in plan.DeviceConfiguration)
        {
            configuration[key] = value;
        }

        return new JsonObject { ["deviceConfiguration"] = configuration, ["thingName"] = plan.Thing?.Name };
    });

    private async Task<string> NewOwnershipTokenAsync(string certificateId)
    {
        // The certificate id names the grain that keeps the token's hash; the random part is the secret.
        var token = $"{certificateId}.{Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_')}";
        await GrainFactory.GetGrain<ICertificateGrain>(certificateId)
            .SetOwnershipToken(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(token)), time.GetUtcNow() + options.Value.OwnershipTokenLifetime);
        return token;
    }

    private static JsonObject Read(byte[] request)
    {
        try
        {
            return (request.Length == 0 ? null : JsonNode.Parse(request)) as JsonObject
                ?? throw new ApiException(400, "InvalidPayload", "The request must be a JSON object.");
        }
        catch (JsonException ex)
        {
            throw new ApiException(400, "InvalidPayload", $"The request is not valid JSON: {ex.Message}");
        }
    }

    /// <summary>AWS's accepted document, or its rejected one: <c>{"statusCode","errorCode","errorMessage"}</c>.</summary>
    private static async Task<ProvisioningAnswer> AnswerAsync(Func<Task<JsonObject>> work)
    {
        try
        {
            return new ProvisioningAnswer(true, (await work()).ToJsonString());
        }
        catch (ApiException ex)
        {
            return new ProvisioningAnswer(false, new JsonObject { ["statusCode"] = ex.Status, ["errorCode"] = ex.Code, ["errorMessage"] = ex.Message }.ToJsonString());
        }
    }
}
