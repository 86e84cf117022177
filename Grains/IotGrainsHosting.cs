using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Shadows;
using OrleansIot.Grains.Things;

namespace OrleansIot.Grains;

/// <summary>
/// What the grains need on every silo, whatever the storage: their settings (bound and checked at start), the rules
/// engine's services and the clock. The silo host and the test cluster both compose a silo with this; each then adds
/// its storage (PostgreSQL or embedded) and what the gateway provides (the broker publisher, access changes).
/// </summary>
public static class IotGrainsHosting
{
    public static ISiloBuilder AddIotGrains(this ISiloBuilder silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        var services = silo.Services;
        services.AddValidatedOptions<ThingOptions>(ThingOptions.SectionName);
        // Keyed by the grain class's full name.
        services.AddOptions<GrainCollectionOptions>().Configure<IOptions<ThingOptions>>((collection, things) =>
            collection.ClassSpecificCollectionAge[typeof(ThingGrain).FullName!] = things.Value.IdleActivationAge);
        services.AddValidatedOptions<ShadowOptions>(ShadowOptions.SectionName);
        services.AddValidatedOptions<Rules.RulesOptions>(Rules.RulesOptions.SectionName);
        services.AddValidatedOptions<Abstractions.Registry.RegistryOptions>(Abstractions.Registry.RegistryOptions.SectionName);
        services.AddValidatedOptions<Provisioning.ProvisioningOptions>(Provisioning.ProvisioningOptions.SectionName);
        services.AddValidatedOptions<Certificates.CertificateAuthorityOptions>(Certificates.CertificateAuthorityOptions.SectionName);
        services.AddValidatedOptions<Analytics.AnalyticsOptions>(Analytics.AnalyticsOptions.SectionName);
        services.AddValidatedOptions<Jobs.JobsOptions>(Jobs.JobsOptions.SectionName);
        services.AddValidatedOptions<Abstractions.Artifacts.ArtifactOptions>(Abstractions.Artifacts.ArtifactOptions.SectionName);
        services.TryAddSingleton<Abstractions.Artifacts.ArtifactUrls>();
        services.AddValidatedOptions<FleetIndex.FleetIndexOptions>(FleetIndex.FleetIndexOptions.SectionName);
        services.AddValidatedOptions<Alarms.AlarmOptions>(Alarms.AlarmOptions.SectionName);
        services.AddIotFleetIndexNode();
        services.TryAddSingleton(TimeProvider.System);
        services.AddIotRules();
        return silo;
    }

    /// <summary>
    /// What every node's thing grains need of the fleet index: the node's copy of its settings and the write-behind of
    /// shadow parts (also answering the searches' request to write, through Orleans' control channel).
    /// </summary>
    public static IServiceCollection AddIotFleetIndexNode(this IServiceCollection services)
    {
        services.TryAddSingleton<FleetIndex.FleetIndexView>();
        services.TryAddSingleton<Abstractions.Things.IConnectivityIndexing>(sp => sp.GetRequiredService<FleetIndex.FleetIndexView>());
        services.TryAddSingleton<FleetIndex.IndexWriteBehind>();
        services.AddKeyedSingleton<Orleans.Providers.IControllable>(FleetIndex.IndexWriteBehind.ControlName, (sp, _) => sp.GetRequiredService<FleetIndex.IndexWriteBehind>());
        return services;
    }
}
