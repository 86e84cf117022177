using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Grains.Registry;
using OrleansIot.Grains.Shadows;

namespace OrleansIot.Grains;

/// <summary>
/// The embedded default's stores: shadows and the registry in the cluster's memory grain storage; the analytics sink
/// and queues in memory grains.
/// </summary>
public static class EmbeddedStores
{
    /// <summary>Registers the in-memory shadow and registry stores (the PostgreSQL mode registers its own instead).</summary>
    public static IServiceCollection AddIotEmbeddedStores(this IServiceCollection services)
    {
        services.AddSingleton<IShadowStore, GrainStorageShadowStore>();
        services.AddSingleton<Analytics.ITelemetryStore, Analytics.RingTelemetryStore>();
        services.AddSingleton<Queues.IQueueStore, Queues.MemoryQueueStore>();
        services.AddSingleton<Audit.IAuditStore, Audit.MemoryAuditStore>();
        services.AddSingleton<FleetIndex.IFleetIndexStore, FleetIndex.EmbeddedFleetIndexStore>();
        services.AddSingleton<IRegistryStore>(sp => sp.GetRequiredService<IGrainFactory>().GetGrain<IEmbeddedRegistryGrain>("registry"));
        return services;
    }
}
