using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;
using OrleansIot.Grains;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Shadows;
using OrleansIot.Grains.Things;
using OrleansIot.Silo.Hosting;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// One TestingHost cluster with two silos for the whole run (memory storage and streams), so grain calls cross
/// silos. Tests use a fresh grain key each instead of resetting the cluster.
/// </summary>
public sealed class ClusterFixture : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.GrainFactory;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(initialSilosCount: 2);
        builder.AddSiloBuilderConfigurator<SiloConfigurator>();
        builder.AddClientBuilderConfigurator<ClientConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
        await ReminderProbe.WaitUntilReadyAsync(Cluster.GrainFactory);
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    internal sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            // Composed as the silo host composes it (AddIotGrains), with memory storage and recording fakes of the gateway.
            silo.AddIotGrains()
                .AddIotMemoryGrainStorage()
                .AddMemoryStreams(StreamNames.Provider)
                .UseInMemoryReminderService();
            silo.Services.AddIotEmbeddedStores();
            silo.Services.AddSingleton<IBrokerPublisher>(RecordingBroker.Shared);
            silo.Services.AddSingleton<OrleansIot.Grains.Abstractions.Policies.IAccessChangeNotifier>(RecordingAccessChanges.Shared);
            silo.Services.Configure<ThingOptions>(o =>
            {
                o.UsagePersistInterval = TimeSpan.FromMilliseconds(200);
                o.KeptEndsDelay = TimeSpan.FromMilliseconds(500);
            });
            silo.Services.Configure<OrleansIot.Grains.Abstractions.Registry.RegistryOptions>(o =>
            {
                o.PublishEvents = true;
                o.ThingTypeDeleteDelay = TimeSpan.FromMilliseconds(300);
            });
        }
    }

    internal sealed class ClientConfigurator : IClientBuilderConfigurator
    {
        public void Configure(Microsoft.Extensions.Configuration.IConfiguration configuration, IClientBuilder client) =>
            client.AddMemoryStreams(StreamNames.Provider);
    }
}

[CollectionDefinition(Name)]
public sealed class ClusterCollection : ICollectionFixture<ClusterFixture>
{
    public const string Name = "cluster";
}
