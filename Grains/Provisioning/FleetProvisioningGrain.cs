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

using static OrleansIot.Grains.Provisioning.ProvisioningTemplate.OverrideSetting;

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

        // The device's own certificate is AWS::IoT::Certificate::Id, whatever the device sends.
        var plan = ProvisioningTemplate.Parse(template.TemplateBody)
            .Evaluate(parameters, new Dictionary<string, string> { [ProvisioningTemplate.CertificateIdParameter] = certificateId });
        await ApplyAsync(plan, certificateId, templateName);
        await certificate.ClaimOwnership(hash, spend: true);
        var configuration = new JsonObject();
        foreach (var (key, value) in plan.DeviceConfiguration)
        {
            configuration[key] = value;
        }

        return new JsonObject { ["deviceConfiguration"] = configuration, ["thingName"] = plan.Thing?.Name };
    });

    public Task<ProvisioningAnswer> ProvisionJustInTime(string certificatePem, string templateName, string templateBody) => AnswerAsync(async () =>
    {
        using var certificate = System.Security.Cryptography.X509Certificates.X509Certificate2.CreateFromPem(certificatePem);
        var builtIns = ProvisioningTemplate.BuiltInsOf(certificate);
        var plan = ProvisioningTemplate.Parse(templateBody).Evaluate(new Dictionary<string, string>(), builtIns);
        await ApplyAsync(plan, builtIns[ProvisioningTemplate.CertificateIdParameter], templateName);
        return new JsonObject { ["thingName"] = plan.Thing?.Name };
    });

    /// <summary>
    /// Carries out a plan for the device's certificate: the thing (made, or changed as its OverrideSettings say),
    /// the certificate as the thing's principal, the policies attached to it, then the certificate's status. What
    /// can refuse the request (a conflict the template FAILs on, a missing thing type, group or policy) is checked
    /// first, so a refused provisioning leaves nothing behind.
    /// </summary>
    private async Task ApplyAsync(ProvisioningTemplate.Plan plan, string certificateId, string templateName)
    {
        var arn = registry.Value.Arn($"cert/{certificateId}");
        ThingRecord? existing = null;
        if (plan.Thing is { } wanted)
        {
            existing = await GrainFactory.GetGrain<IThingGrain>(wanted.Name).DescribeThing();
            if (existing is not null && (wanted.AttributesOverride == Fail || wanted.TypeOverride == Fail || wanted.GroupsOverride == Fail))
            {
                throw new ApiException(409, "ResourceConflictsException", $"Thing {wanted.Name} exists and the template's OverrideSettings say FAIL.");
            }

            if (wanted.TypeName is { } typeName && await GrainFactory.GetGrain<IThingTypeGrain>(typeName).Describe() is null)
            {
                throw ApiException.NotFound($"Thing type {typeName} cannot be found.");
            }

            foreach (var group in wanted.Groups ?? [])
            {
                if (await GrainFactory.GetGrain<IThingGroupGrain>(group).Describe() is null)
                {
                    throw ApiException.NotFound($"Thing group {group} cannot be found.");
                }
            }
        }

        foreach (var policy in plan.Policies)
        {
            if (policy.Name is { } name && await GrainFactory.GetGrain<IPolicyGrain>(name).Get() is null)
            {
                throw ApiException.NotFound($"Policy {name} cannot be found.");
            }
        }

        if (plan.Thing is { } thing)
        {
            await ProvisionThingAsync(thing, existing);
            await Certificates.AttachThingPrincipal(thing.Name, arn);
        }

        foreach (var policy in plan.Policies)
        {
            // AWS names a policy given only by its document after a hash of the document.
            var policyName = policy.Name ?? $"{templateName}-{Convert.ToHexStringLower(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(policy.Document!)))[..16]}";
            var grain = GrainFactory.GetGrain<IPolicyGrain>(policyName);
            if (policy.Name is null && await grain.Get() is null)
            {
                await grain.Create(policy.Document!);
            }

            await grain.Attach(arn);
        }

        await GrainFactory.GetGrain<ICertificateGrain>(certificateId).UpdateStatus(plan.CertificateStatus ?? CertificateStatus.Active);
    }

    /// <summary>A new thing as the template has it; an existing one changed as its OverrideSettings say (groups: merged unless said otherwise).</summary>
    private async Task ProvisionThingAsync(ProvisioningTemplate.ThingPlan thing, ThingRecord? existing)
    {
        var grain = GrainFactory.GetGrain<IThingGrain>(thing.Name);
        if (existing is null)
        {
            await grain.CreateThing(thing.TypeName, thing.Attributes);
        }
        else
        {
            if (thing.Attributes is { } attributes && thing.AttributesOverride is Replace or Merge)
            {
                await grain.UpdateThing(new ThingUpdate(null, new AttributePayload(attributes, thing.AttributesOverride == Merge), null, false));
            }

            if (thing.TypeName is { } typeName && thing.TypeOverride == Replace && typeName != existing.ThingTypeName)
            {
                await grain.UpdateThing(new ThingUpdate(typeName, null, null, false));
            }

            if (thing.Groups is { } keep && thing.GroupsOverride == Replace)
            {
                foreach (var group in await grain.ListThingGroups())
                {
                    if (!keep.Contains(group.ThingGroupName, StringComparer.Ordinal))
                    {
                        await grain.RemoveFromThingGroup(group.ThingGroupName);
                    }
                }
            }
        }

        if (existing is null || thing.GroupsOverride is not ProvisioningTemplate.OverrideSetting.DoNothing)
        {
            foreach (var group in thing.Groups ?? [])
            {
                await grain.AddToThingGroup(group);
            }
        }
    }

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
