using System.Reflection;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using Orleans.Configuration;
using Orleans.Reminders;
using Orleans.Streams;
using Orleans.TestingHost;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// A one-silo TestingHost cluster (services as in <see cref="ClusterFixture"/>) whose grains read a
/// <see cref="FakeTimeProvider"/>: our grains' injected <see cref="TimeProvider"/> and Orleans' grain timers
/// (<c>TimeProviderNames.Grains</c>) move only when a test advances <see cref="Clock"/>. Orleans' own machinery
/// (membership, messaging timeouts, activation collection, directory, streams, reminders) stays on the real clock,
/// through the per-area keys Orleans resolves its clocks by, so advancing the fake clock never declares a silo dead
/// or times out a call. For behaviour that depends on elapsed time: retention, expiry, rollout rates.
/// </summary>
public sealed class FakeClockClusterFixture : IAsyncLifetime
{
    public TestCluster Cluster { get; private set; } = null!;

    public IGrainFactory Grains => Cluster.GrainFactory;

    /// <summary>The grains' clock; starts at the FakeTimeProvider's own epoch, never at today's date.</summary>
    public FakeTimeProvider Clock { get; } = FakeClockConfigurator.Clock;

    public async Task InitializeAsync()
    {
        var builder = new TestClusterBuilder(initialSilosCount: 1);
        builder.AddSiloBuilderConfigurator<ClusterFixture.SiloConfigurator>();
        builder.AddSiloBuilderConfigurator<FakeClockConfigurator>();
        builder.AddClientBuilderConfigurator<ClusterFixture.ClientConfigurator>();
        Cluster = builder.Build();
        await Cluster.DeployAsync();
        await ReminderProbe.WaitUntilReadyAsync(Cluster.GrainFactory);
    }

    public async Task DisposeAsync()
    {
        await Cluster.StopAllSilosAsync();
        await Cluster.DisposeAsync();
    }

    /// <summary>Applied after the shared configurator, so its clock replaces the real one.</summary>
    private sealed class FakeClockConfigurator : ISiloConfigurator
    {
        // The TestingHost makes configurators by type, so the one clock is reached through a static.
        public static FakeTimeProvider Clock { get; } = new();

        private static readonly string[] RealTimeAreas =
        [
            TimeProviderNames.Messaging,
            TimeProviderNames.SystemTimers,
            TimeProviderNames.Membership,
            TimeProviderNames.ActivationManagement,
            TimeProviderNames.GrainDirectory,
            StreamingTimeProviderNames.Streaming,
            ReminderTimeProviderNames.Reminders,
        ];

        public void Configure(ISiloBuilder silo)
        {
            silo.Services.AddSingleton<TimeProvider>(Clock);
            foreach (var area in RealTimeAreas)
            {
                silo.Services.AddKeyedSingleton(area, TimeProvider.System);
            }

            GiveOrleansServicesTheRealClock(silo.Services);
        }

        /// <summary>
        /// Orleans 10.4.2 also reads the unkeyed TimeProvider, which here is the fake clock, outside the keyed areas:
        /// the distributed grain directory (its retry delays), the cluster manifest provider (peer probe timeouts) and
        /// the grain-placement pipeline (Polly retries). A grain placed while the directory's first view was being
        /// installed waited for a retry delay that never came: the reminder table's grain hung, so the reminder
        /// service never started (in CI; about 1 run in 10 here) until a test happened to move the clock. These services are
        /// given the real clock, and placement does not retry (a failure reaches the caller, which retries on the
        /// real clock as the reminder probe does).
        /// </summary>
        private static void GiveOrleansServicesTheRealClock(IServiceCollection services)
        {
            var directory = typeof(SiloMessagingOptions).Assembly.GetType("Orleans.Runtime.GrainDirectory.DistributedGrainDirectory", throwOnError: true)!;
            if (!services.Any(d => d.ServiceType == directory))
            {
                // The TestingHost adds the directory in its own configurator, which keeps a registration it finds.
                services.AddSingleton(directory, directory);
            }

            for (var i = 0; i < services.Count; i++)
            {
                if (services[i] is { IsKeyedService: false, ImplementationType: { } type } descriptor
                    && type.Assembly.GetName().Name!.StartsWith("Orleans", StringComparison.Ordinal)
                    && type.GetConstructors().Any(c => c.GetParameters().Any(IsTheUnkeyedClock)))
                {
                    services[i] = new ServiceDescriptor(descriptor.ServiceType, sp => ActivatorUtilities.CreateInstance(sp, type, TimeProvider.System), descriptor.Lifetime);
                }
            }

            services.Configure<SiloMessagingOptions>(options => options.PlacementMaxRetries = 0);
        }

        private static bool IsTheUnkeyedClock(ParameterInfo parameter) =>
            parameter.ParameterType == typeof(TimeProvider) && !parameter.IsDefined(typeof(FromKeyedServicesAttribute));
    }
}

[CollectionDefinition(Name)]
public sealed class FakeClockClusterCollection : ICollectionFixture<FakeClockClusterFixture>
{
    public const string Name = "fake-clock cluster";
}
