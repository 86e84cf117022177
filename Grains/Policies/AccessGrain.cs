using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Grains.Policies;

/// <summary>Gathers a device grant (certificate, CA, thing, effective policies) on the node of the gateway asking.</summary>
[GrainType("access"), Orleans.Concurrency.StatelessWorker]
internal sealed class AccessGrain(IOptions<RegistryOptions> registry) : Grain, IAccessGrain
{
    private string? _platformCaId;

    public async Task<DeviceGrant> Resolve(string certificateId, string clientId)
    {
        if (await GrainFactory.GetGrain<ICertificateGrain>(certificateId).Describe() is not { } certificate)
        {
            return DeviceGrant.Unknown;
        }

        var caActive = true;
        if (certificate.CaCertificateId is { } caId)
        {
            _platformCaId ??= (await GrainFactory.GetGrain<ICertificateAuthorityGrain>(ICertificateAuthorityGrain.Key).Get()).CertificateId;
            if (caId != _platformCaId)
            {
                var ca = await GrainFactory.GetGrain<ICaCertificateGrain>(caId).Describe();
                caActive = ca?.Info.Status == CertificateStatus.Active;
            }
        }

        // Thing policy variables exist only when the client id names a thing (AWS); IsAttached when this certificate is its principal.
        var thing = ThingNames.IsValidThingName(clientId) ? await GrainFactory.GetGrain<IThingGrain>(clientId).DescribeThing() : null;
        var attached = thing is not null && certificate.Things.Contains(clientId, StringComparer.Ordinal);
        var policies = await GrainFactory.GetGrain<IPolicyQueryGrain>(0).Effective(registry.Value.Arn($"cert/{certificateId}"), attached ? clientId : null);
        return new DeviceGrant(certificate.Status, certificate.CaCertificateId, caActive, certificate.NotBefore, certificate.NotAfter, thing, attached, policies);
    }
}
