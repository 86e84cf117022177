using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Orleans.Configuration;
using Orleans.Storage;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Shadows;
using OrleansIot.Grains.Things;
using OrleansIot.Silo.Storage;

namespace OrleansIot.Silo.Hosting;

/// <summary>The silo host: the Orleans silo and the gateway in one process, composed from configuration.</summary>
public static partial class IotSiloHost
{
    /// <summary>Builds the node: silo (clustering, storage, streams by <c>Iot:Storage</c>) plus gateway.</summary>
    public static WebApplication CreateApplication(string[] args, Action<WebApplicationBuilder>? configure = null)
    {
        // Content root = where the binaries are, so appsettings.json is found whatever the working directory.
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        configure?.Invoke(builder);
        PortOffset.Apply(builder.Configuration);
        builder.AddIotSilo();
        builder.AddIotGateway();
        var app = builder.Build();
        app.MapIotGateway();
        if (DashboardEnabled(builder.Configuration))
        {
            // Admins only: a dashboard session from the console's sign-in (Gateway/Http/DashboardSessions.cs).
            Gateway.Http.DashboardSessions.RequireDashboardSession(
                Orleans.Dashboard.ServiceCollectionExtensions.MapOrleansDashboard(app, Gateway.Http.DashboardSessions.PathPrefix)).ExcludeFromDescription();
        }

        return app;
    }

    /// <summary>
    /// Runs the node until Ctrl-C. A bad setting, a port in use or an unreachable database ends it at start with exit
    /// code 2 and a line naming the setting.
    /// </summary>
    public static async Task<int> RunAsync(string[] args)
    {
        WebApplication app;
        try
        {
            app = CreateApplication(args);
        }
        catch (OptionsValidationException ex)
        {
            return ConfigurationError(ex);
        }

        if (await StartChecks.RunAsync(app.Configuration) is { Count: > 0 } problems)
        {
            await app.DisposeAsync();
            return ConfigurationError(new OptionsValidationException("start", typeof(StartChecks), problems));
        }

        try
        {
            await app.RunAsync();
            return 0;
        }
        catch (OptionsValidationException ex)
        {
            return ConfigurationError(ex);
        }
        finally
        {
            await app.DisposeAsync();
        }
    }

    private static int ConfigurationError(OptionsValidationException ex)
    {
        Console.Error.WriteLine("OrleansIot cannot start:");
        foreach (var failure in ex.Failures)
        {
            Console.Error.WriteLine($"  {failure}");
        }

        return 2;
    }

    /// <summary>Adds the Orleans silo, its storage and its streams as <c>Iot:Storage</c> says.</summary>
    private static bool DashboardEnabled(IConfiguration configuration) =>
        Settings.Bind<DashboardAccessOptions>(configuration, DashboardAccessOptions.SectionName).Enabled;

    public static WebApplicationBuilder AddIotSilo(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        var configuration = builder.Configuration;
        var storage = Settings.Bind<StorageOptions>(configuration, StorageOptions.SectionName);
        var cluster = Settings.Bind<ClusterSettings>(configuration, ClusterSettings.SectionName);
        var listen = ListenAddress(cluster.Endpoints, Settings.Bind<NodeOptions>(configuration, NodeOptions.SectionName));
        var clusterTls = Settings.Bind<SiloTlsSettings>(configuration, SiloTlsSettings.SectionName);
        var connectionString = configuration.GetConnectionString("Iot");
        if (storage.Storage == StorageMode.Postgres && string.IsNullOrWhiteSpace(connectionString))
        {
            throw new OptionsValidationException("ConnectionStrings:Iot", typeof(StorageOptions),
                ["ConnectionStrings:Iot: required when Iot:Storage is Postgres (e.g. Host=127.0.0.1;Database=iot;Username=iot;Password=...)."]);
        }

        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddKeyedSingleton<TimeProvider>(TimeProviderNames.Membership, new ProcessClock());
        // Orleans' silo warns at every start that ServerGC is off: workstation GC is this project's choice for small
        // machines (Directory.Build.props). The class's only other warning is for a stop that was not graceful.
        builder.Logging.AddFilter("Orleans.Runtime.Silo", LogLevel.Error);
        builder.Services.AddSingleton(Options.Create(storage));
        // The postgres rule action writes to any configured connection string, in either storage mode.
        builder.Services.AddSingleton<Grains.Rules.IRuleTableWriter, PostgresRuleTableWriter>();
        // PUBACK after the durable stream write in PostgreSQL mode; in memory there is nothing durable to wait for.
        builder.Services.PostConfigure<TelemetryOptions>(o => o.AcknowledgeAfterWrite ??= storage.Storage == StorageMode.Postgres);
        // Development access by default only where nothing is durable: a durable deployment must ask for it.
        builder.Services.PostConfigure<Gateway.Hosting.AuthOptions>(o => o.AllowAnonymous ??= storage.Storage == StorageMode.Memory);

        var readiness = builder.Services.AddHealthChecks().AddCheck<ClusterMembershipCheck>("cluster", tags: [Gateway.Hosting.Observability.ReadyTag]);
        if (storage.Storage == StorageMode.Postgres)
        {
            readiness.AddCheck<PostgresReachableCheck>("storage", tags: [Gateway.Hosting.Observability.ReadyTag]);

            // Registered before UseOrleans: hosted services start in order, and the Orleans providers read their
            // queries from the database when the silo starts.
            builder.Services.AddSingleton(_ => NpgsqlDataSource.Create(WithoutJit(connectionString!)));
            builder.Services.AddSingleton<PostgresSchema>();
            builder.Services.AddHostedService(sp => sp.GetRequiredService<PostgresSchema>());
            builder.Services.AddSingleton<Gateway.Retained.IRetainedMessageStore, PostgresRetainedMessageStore>();
            builder.Services.AddSingleton<IShadowStore, PostgresShadowStore>();
            builder.Services.AddSingleton<Grains.Registry.IRegistryStore, PostgresRegistryStore>();
            builder.Services.AddSingleton<Grains.FleetIndex.IFleetIndexStore, PostgresFleetIndexStore>();
            builder.Services.AddSingleton<Grains.Queues.IQueueStore, PostgresQueueStore>();
            builder.Services.AddSingleton<Grains.Audit.IAuditStore, PostgresAuditStore>();
            builder.Services.AddSingleton<Grains.Abstractions.Artifacts.IArtifactBlobStore, PostgresArtifactStore>();
            builder.Services.AddSingleton<PostgresTelemetryStore>();
            builder.Services.AddSingleton<Grains.Analytics.ITelemetryStore>(sp => sp.GetRequiredService<PostgresTelemetryStore>());
            builder.Services.AddHostedService(sp => sp.GetRequiredService<PostgresTelemetryStore>());
        }
        else
        {
            builder.Services.AddIotEmbeddedStores();
            builder.Services.AddHostedService<EmbeddedModeWarning>();
        }

        builder.UseOrleans(silo =>
        {
            silo.AddIotGrains();   // the grains' settings and services; storage and the gateway's services are added here
            if (DashboardEnabled(configuration))
            {
                Orleans.Dashboard.ServiceCollectionExtensions.AddDashboard(silo);
            }

            // Consumers that take batches (the rule evaluators) get up to this many stream events per call: one
            // evaluation pass and one write of their bulk actions per call instead of per event.
            silo.Services.Configure<StreamPullingAgentOptions>(StreamNames.Provider, o => o.BatchContainerBatchSize = 256);
            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = cluster.ClusterId;
                o.ServiceId = cluster.ServiceId;
            });
            // How fast a dead silo is declared dead: the grains it held (a client's session grain among them) are
            // activated elsewhere only then, so a device whose node died cannot reconnect before. Orleans's defaults
            // (5 s probes, 3 missed) take 15-35 s on a small cluster; 2 s probes, 3 missed, let a client reconnect to a
            // survivor within 10 s of a kill -9 (measured in NodeDeathDeliveryTests). The cost: a silo that stalls for
            // ~6 s (a long GC pause, a saturated VM) is declared dead and must restart; its clients reconnect elsewhere.
            // Orleans:Membership:* overrides (e.g. ProbeTimeout=00:00:05 for clusters on noisy machines).
            silo.Services.AddOptions<ClusterMembershipOptions>()
                .Configure(o =>
                {
                    o.ProbeTimeout = TimeSpan.FromSeconds(2);
                    o.NumMissedProbesLimit = 3;
                })
                .Bind(builder.Configuration.GetSection("Orleans:Membership"));
            var endpoints = cluster.Endpoints;
            silo.ConfigureEndpoints(IPAddress.Parse(endpoints.AdvertisedIPAddress), endpoints.SiloPort, endpoints.GatewayPort);
            if (cluster.KubernetesHosting)
            {
                silo.UseKubernetesHosting();
            }

            if (storage.Storage == StorageMode.Postgres)
            {
                AddPostgres(silo, connectionString!, Settings.Bind<TelemetryOptions>(configuration, TelemetryOptions.SectionName).RedeliverAfter);
            }
            else
            {
                var primary = cluster.PrimarySiloEndpoint is { } p ? IPEndPoint.Parse(p) : null;
                silo.UseLocalhostClustering(endpoints.SiloPort, endpoints.GatewayPort, primary, serviceId: cluster.ServiceId, clusterId: cluster.ClusterId);
                silo.AddIotMemoryGrainStorage();
                silo.UseInMemoryReminderService();
                var cacheAge = Settings.Bind<TelemetryOptions>(configuration, TelemetryOptions.SectionName).MemoryStreamCacheAge;
                silo.AddMemoryStreams(StreamNames.Provider, streams => streams.ConfigureCacheEviction(eviction => eviction.Configure(o =>
                {
                    o.DataMaxAgeInCache = cacheAge;
                    o.DataMinTimeInCache = cacheAge / 2;
                })));
            }

            // After the clustering, which sets endpoints of its own: the ports listen where the node's other ports do.
            silo.Configure<EndpointOptions>(o =>
            {
                o.SiloListeningEndpoint = new IPEndPoint(listen, endpoints.SiloPort);
                o.GatewayListeningEndpoint = new IPEndPoint(listen, endpoints.GatewayPort);
            });
            if (clusterTls.Enabled)
            {
                UseClusterTls(silo, clusterTls);
            }
        });
        return builder;
    }

    /// <summary>Where the silo and gateway ports listen: <c>Orleans:Endpoints:ListenAddress</c>, else <c>Iot:BindAddress</c>'s address.</summary>
    private static IPAddress ListenAddress(EndpointSettings endpoints, NodeOptions node)
    {
        var (key, value) = endpoints.ListenAddress is { } configured ? ("Orleans:Endpoints:ListenAddress", configured) : ("Iot:BindAddress", node.BindAddress);
        var address = value switch
        {
            "localhost" => IPAddress.Loopback,
            "*" => IPAddress.Any,
            _ when IPAddress.TryParse(value, out var parsed) => parsed,
            _ => throw new OptionsValidationException(key, typeof(EndpointSettings), [$"{key}: '{value}' is not 'localhost', '*' or an IP address."]),
        };
        var advertised = IPAddress.Parse(endpoints.AdvertisedIPAddress);
        if (IPAddress.IsLoopback(address) && !IPAddress.IsLoopback(advertised))
        {
            throw new OptionsValidationException(key, typeof(EndpointSettings),
                [$"Orleans:Endpoints:ListenAddress: the silo would listen on {address} (from {key}) but tells other silos to reach it at {advertised} (Orleans:Endpoints:AdvertisedIPAddress); set Iot:BindAddress or Orleans:Endpoints:ListenAddress to that address or '*'."]);
        }

        return address;
    }

    /// <summary>
    /// TLS on the silo and gateway ports: this silo's certificate, and peers and clients whose certificates chain to
    /// the cluster's CA (no trust store, no host names: membership in the cluster is having such a certificate).
    /// </summary>
    private static void UseClusterTls(ISiloBuilder silo, SiloTlsSettings tls)
    {
        var certificate = ServerCertificate.Load(SiloTlsSettings.SectionName, tls.CertificatePath!, tls.KeyPath, tls.CertificatePassword, TimeProvider.System.GetUtcNow());
        var ca = ServerCertificate.LoadCa(SiloTlsSettings.SectionName, nameof(SiloTlsSettings.CaCertificatePath), tls.CaCertificatePath!);
        silo.UseTls(certificate, o =>
        {
            o.RemoteCertificateMode = Orleans.Connections.Security.RemoteCertificateMode.RequireCertificate;
            o.ClientCertificateMode = tls.RequireClientCertificate
                ? Orleans.Connections.Security.RemoteCertificateMode.RequireCertificate
                : Orleans.Connections.Security.RemoteCertificateMode.AllowCertificate;
            o.RemoteCertificateValidation = (remote, _, _) => remote is null ? !tls.RequireClientCertificate : ChainsTo(remote, ca);
        });
    }

    private static bool ChainsTo(X509Certificate2 presented, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.DisableCertificateDownloads = true;
        return chain.Build(presented);
    }

    private static void AddPostgres(ISiloBuilder silo, string connectionString, TimeSpan redeliverAfter)
    {
        const string Invariant = "Npgsql";
        silo.UseAdoNetClustering(o =>
        {
            o.Invariant = Invariant;
            o.ConnectionString = connectionString;
        });
        silo.AddAdoNetGrainStorage(StorageNames.Default, o =>
        {
            o.Invariant = Invariant;
            o.ConnectionString = connectionString;
        });
        silo.AddAdoNetGrainStorage(StorageNames.PubSub, o =>
        {
            o.Invariant = Invariant;
            o.ConnectionString = connectionString;
        });
        // Orleans' own pubsub state (PubSubRendezvousGrain) has constructor-bound records that System.Text.Json cannot
        // read back: with it, a pubsub grain that reactivates (its node died, or it was idle) fails, stream producers
        // cannot register, and the telemetry stream stalls. Found by the kill-a-node delivery test. It keeps
        // Orleans' serializer; our grains' state stays JSON (below).
        silo.Services.AddOptions<AdoNetGrainStorageOptions>(StorageNames.PubSub)
            .Configure<IServiceProvider>((o, services) => o.GrainStorageSerializer = ActivatorUtilities.CreateInstance<OrleansGrainStorageSerializer>(services));
        silo.UseAdoNetReminderService(o =>
        {
            o.Invariant = Invariant;
            o.ConnectionString = connectionString;
        });
        silo.AddAdoNetStreams(StreamNames.Provider, o =>
        {
            o.Invariant = Invariant;
            o.ConnectionString = connectionString;
            o.VisibilityTimeout = redeliverAfter;
        });
        // Grain state as plain System.Text.Json: no .NET type names in stored rows, so refactoring a class does
        // not orphan its data; the property names are the schema.
        silo.Services.AddSingleton<IGrainStorageSerializer, SystemTextJsonGrainStorageSerializer>();
    }

    /// <summary>Says, loudly, that the embedded default keeps nothing.</summary>
    /// <summary>
    /// Our statements are short, except the fleet index's aggregations, whose estimated cost makes PostgreSQL compile
    /// them first: measured over 100,000 things, the JIT spent 2.2 s compiling a statistic that runs in 0.3 s without it.
    /// </summary>
    private static string WithoutJit(string connectionString)
    {
        var builder = new NpgsqlConnectionStringBuilder(connectionString);
        builder.Options = string.IsNullOrWhiteSpace(builder.Options) ? "-c jit=off" : builder.Options + " -c jit=off";
        return builder.ConnectionString;
    }

    private sealed partial class EmbeddedModeWarning(IHostApplicationLifetime lifetime, ILogger<EmbeddedModeWarning> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            lifetime.ApplicationStarted.Register(() => LogNotDurable(logger));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(EventId = 3001, Level = LogLevel.Warning, Message = "EMBEDDED MODE: NOTHING IS DURABLE. Things, sessions, reminders and streams live in this process's memory and are lost when it stops. For a durable node set Iot:Storage=Postgres and ConnectionStrings:Iot.")]
        private static partial void LogNotDurable(ILogger logger);
    }

    /// <summary>
    /// The system clock with timestamps counted from this process's start. Orleans' watchdog starts its platform
    /// thread before it sets the time of its first component check, so its first look measures from timestamp 0:
    /// with the system's timestamps (counted from boot) it warned at every start that the check had "not completed"
    /// for the machine's whole uptime. Counted from the process start, that first look sees a few seconds, inside
    /// the watchdog's tolerance. Only timestamps move: differences between them, wall time and timers are the
    /// system's. Used for Orleans' membership area (the watchdog's clock), nothing else.
    /// </summary>
    private sealed class ProcessClock : TimeProvider
    {
        private readonly long _origin = System.GetTimestamp();

        public override long TimestampFrequency => System.TimestampFrequency;

        public override long GetTimestamp() => System.GetTimestamp() - _origin;

        public override DateTimeOffset GetUtcNow() => System.GetUtcNow();

        public override TimeZoneInfo LocalTimeZone => System.LocalTimeZone;

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            System.CreateTimer(callback, state, dueTime, period);
    }
}
