using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Storage;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Silo.Hosting;

public static class EmbeddedGrainStorage
{
    /// <summary>
    /// The embedded default's grain storage (and the test cluster's): in memory, with Orleans' binary serializer, not
    /// the memory provider's default Newtonsoft JSON. Embedded state is never read by anything else; with JSON a
    /// device's connect (two state writes) cost 0.97-1.02 ms of CPU, with this 0.76-0.84 ms (docs/benchmarks.md).
    /// </summary>
    public static ISiloBuilder AddIotMemoryGrainStorage(this ISiloBuilder silo)
    {
        ArgumentNullException.ThrowIfNull(silo);
        foreach (var name in new[] { StorageNames.Default, StorageNames.PubSub })
        {
            silo.AddMemoryGrainStorage(name);
            silo.Services.AddOptions<MemoryGrainStorageOptions>(name)
                .Configure<IServiceProvider>((o, services) => o.GrainStorageSerializer = ActivatorUtilities.CreateInstance<OrleansGrainStorageSerializer>(services));
        }

        return silo;
    }
}
