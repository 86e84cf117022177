using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Orleans.Configuration;
using Orleans.Core.Internal;
using Orleans.Storage;
using Orleans.TestingHost;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Things;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Storage;

/// <summary>
/// A two-silo TestingHost cluster whose clustering, grain storage, reminders and streams all run on our
/// PostgreSQL schema through the stock Orleans ADO.NET providers. Created once for the class.
/// </summary>
public sealed class PostgresClusterHolder : IAsyncDisposable
{
    private readonly SemaphoreSlim _gate = new(1, 1);

    public TestCluster? Cluster { get; private set; }
    public string ConnectionString { get; private set; } = "";

    public async Task<TestCluster> EnsureAsync(PostgresServer postgres)
    {
        await _gate.WaitAsync();
        try
        {
            if (Cluster is null)
            {
                ConnectionString = await postgres.CreateDatabaseAsync("cluster");
                await using (var dataSource = NpgsqlDataSource.Create(ConnectionString))
                {
                    await new PostgresSchema(dataSource, NullLogger<PostgresSchema>.Instance).MigrateAsync(CancellationToken.None);
                }

                var builder = new TestClusterBuilder(initialSilosCount: 2);
                builder.Properties["IotTestPostgres"] = ConnectionString;
                builder.AddSiloBuilderConfigurator<SiloConfigurator>();
                var cluster = builder.Build();
                await cluster.DeployAsync();
                Cluster = cluster;
            }

            return Cluster;
        }
        finally
        {
            _gate.Release();
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Cluster is not null)
        {
            await Cluster.StopAllSilosAsync();
            await Cluster.DisposeAsync();
        }

        _gate.Dispose();
    }

    private sealed class SiloConfigurator : ISiloConfigurator
    {
        public void Configure(ISiloBuilder silo)
        {
            var pg = silo.Configuration["IotTestPostgres"]!;
            silo.UseAdoNetClustering(o => { o.Invariant = "Npgsql"; o.ConnectionString = pg; });
            silo.AddAdoNetGrainStorage(StorageNames.Default, o => { o.Invariant = "Npgsql"; o.ConnectionString = pg; });
            silo.AddAdoNetGrainStorage(StorageNames.PubSub, o => { o.Invariant = "Npgsql"; o.ConnectionString = pg; });
            silo.UseAdoNetReminderService(o => { o.Invariant = "Npgsql"; o.ConnectionString = pg; });
            silo.AddAdoNetStreams(StreamNames.Provider, o => { o.Invariant = "Npgsql"; o.ConnectionString = pg; });
            silo.Configure<ReminderOptions>(o => o.MinimumReminderPeriod = TimeSpan.FromSeconds(1));
            silo.Services.AddSingleton<IGrainStorageSerializer, SystemTextJsonGrainStorageSerializer>();
            silo.Services.AddSingleton(TimeProvider.System);
            OrleansIot.Grains.EmbeddedStores.AddIotEmbeddedStores(silo.Services);
            OrleansIot.Grains.IotGrainsHosting.AddIotFleetIndexNode(silo.Services);
            silo.Services.AddSingleton<OrleansIot.Grains.Abstractions.Routing.IBrokerPublisher>(RecordingBroker.Shared);
            silo.Services.AddSingleton<OrleansIot.Grains.Abstractions.Policies.IAccessChangeNotifier>(RecordingAccessChanges.Shared);
            silo.Services.Configure<ThingOptions>(o => o.UsagePersistInterval = TimeSpan.FromMilliseconds(200));
        }
    }
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresProvidersTests(PostgresServer postgres, PostgresClusterHolder holder) : IClassFixture<PostgresClusterHolder>
{
    [Fact]
    public async Task Clustering_TwoSilosJoinThroughTheMembershipTable()
    {
        var cluster = await holder.EnsureAsync(postgres);
        await using var dataSource = NpgsqlDataSource.Create(holder.ConnectionString);
        await using var command = dataSource.CreateCommand("SELECT count(*) FROM orleansmembershiptable WHERE status = 3");
        Assert.Equal(2L, (long)(await command.ExecuteScalarAsync())!);
        Assert.Equal(2, cluster.GetActiveSilos().Count());
    }

    [Fact]
    public async Task ThingState_IsStoredAsPlainJson_AndSurvivesDeactivation()
    {
        var cluster = await holder.EnsureAsync(postgres);
        var name = "pg-" + Guid.NewGuid().ToString("N")[..10];
        var thing = cluster.GrainFactory.GetGrain<IThingGrain>(name);
        await thing.Connected(new ConnectionOpened("s1", name, "127.0.0.1:1", "node-a", 4, DateTimeOffset.UtcNow));
        await thing.RecordUsage(new UsageDelta(5, 50, 1, 10));

        await thing.Cast<IGrainManagementExtension>().DeactivateOnIdle();

        var status = await Eventually.Get(() => thing.GetStatus(), s => s?.Usage.MessagesIn == 5, "usage read back from PostgreSQL");
        Assert.True(status!.Connectivity.Connected);
        await using var dataSource = NpgsqlDataSource.Create(holder.ConnectionString);
        await using var command = dataSource.CreateCommand("SELECT convert_from(payloadbinary, 'UTF8') FROM orleansstorage WHERE graintypestring = 'thing' AND grainidextensionstring = @name");
        command.Parameters.AddWithValue("name", name);
        var json = (string)(await command.ExecuteScalarAsync())!;
        Assert.Contains("\"MessagesIn\":5", json, StringComparison.Ordinal);
        Assert.DoesNotContain("$type", json, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Reminders_FireAndUnregister()
    {
        var cluster = await holder.EnsureAsync(postgres);
        var key = "rem-" + Guid.NewGuid().ToString("N")[..10];
        var probe = cluster.GrainFactory.GetGrain<IReminderProbeGrain>(key);

        await probe.Start(TimeSpan.FromMilliseconds(200));
        await Eventually.True(async () => await probe.Fired() >= 1, "the reminder to fire", TimeSpan.FromSeconds(30));
        await probe.Stop();

        await using var dataSource = NpgsqlDataSource.Create(holder.ConnectionString);
        await using var command = dataSource.CreateCommand("SELECT count(*) FROM orleansreminderstable WHERE grainid LIKE '%' || @key");
        command.Parameters.AddWithValue("key", key);
        Assert.Equal(0L, (long)(await command.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task Streams_DeliverInOrderThroughTheDurableQueue()
    {
        var cluster = await holder.EnsureAsync(postgres);
        var probe = cluster.GrainFactory.GetGrain<IStreamProbeGrain>("str-" + Guid.NewGuid().ToString("N")[..10]);

        await probe.Produce(20);

        var received = await Eventually.Get(() => probe.Received(), r => r.Count >= 20, "20 stream events", TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(0, 20), received);
        // Confirmed messages are removed from the queue table.
        await Eventually.True(async () =>
        {
            await using var dataSource = NpgsqlDataSource.Create(holder.ConnectionString);
            await using var command = dataSource.CreateCommand("SELECT count(*) FROM orleansstreammessage");
            return (long)(await command.ExecuteScalarAsync())! == 0;
        }, "the queue to be confirmed empty");
    }
}
