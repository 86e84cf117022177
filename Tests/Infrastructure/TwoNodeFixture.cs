using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// Two real silo hosts (silo + gateway each, embedded default) in one cluster, in the test process: node A holds
/// the development membership table, node B joins it. For "publisher on one node, subscriber on the other".
/// </summary>
public class TwoNodeFixture : IAsyncLifetime
{
    private readonly string _clusterId = $"two-{Guid.NewGuid():N}";
    private readonly int _primarySiloPort = FreePorts.Next();

    // One directory for both nodes' artifacts, as two embedded nodes on one machine share the default one.
    private readonly string _artifacts = Path.Combine(Path.GetTempPath(), $"oiot-two-artifacts-{Guid.NewGuid():N}");

    public NodeFixture A { get; private set; } = null!;
    public NodeFixture B { get; private set; } = null!;

    /// <summary>Whether both nodes open their TLS listeners.</summary>
    protected virtual bool Tls => false;

    /// <summary>Further settings of node "A" or "B".</summary>
    protected virtual IEnumerable<string> NodeSettings(string node) => [];

    public virtual async Task InitializeAsync()
    {
        A = new ClusterNode(_clusterId, _primarySiloPort, primary: null, Tls, [$"Iot:Artifacts:Directory={_artifacts}", .. NodeSettings("A")]);
        await A.InitializeAsync();
        B = new ClusterNode(_clusterId, FreePorts.Next(), primary: $"127.0.0.1:{_primarySiloPort}", Tls, [$"Iot:Artifacts:Directory={_artifacts}", .. NodeSettings("B")]);
        await B.InitializeAsync();
        // Both routers know each other once each has seen the other in the node directory.
        await Eventually.True(async () => (await A.Http.GetStringAsync("/health")).Contains("\"ok\"", StringComparison.Ordinal), "node A");
    }

    public virtual async Task DisposeAsync()
    {
        await B.DisposeAsync();
        await A.DisposeAsync();
        if (Directory.Exists(_artifacts))
        {
            Directory.Delete(_artifacts, recursive: true);
        }
    }

    private sealed class ClusterNode(string clusterId, int siloPort, string? primary, bool tls, IEnumerable<string> extra) : NodeFixture
    {
        protected override bool Tls => tls;

        protected override IEnumerable<string> Settings =>
        [
            $"Orleans:ClusterId={clusterId}",
            $"Orleans:Endpoints:SiloPort={siloPort}",
            .. primary is null ? Array.Empty<string>() : [$"Orleans:PrimarySiloEndpoint={primary}"],
            "Iot:Routing:RefreshInterval=00:00:00.500",
            "Iot:Routing:StatsInterval=00:00:00.500",
            // Routing tests publish bursts faster than AWS's 100 publishes/s per connection; limits have their own tests.
            "Iot:Limits:MaxPublishesPerSecond=0",
            .. extra,
        ];
    }
}

[CollectionDefinition(Name)]
public sealed class TwoNodeCollection : ICollectionFixture<TwoNodeFixture>
{
    public const string Name = "two-nodes";
}

/// <summary>Two nodes with their TLS listeners open (mTLS on each), for identity changes that cross nodes.</summary>
public sealed class SecureTwoNodeFixture : TwoNodeFixture
{
    protected override bool Tls => true;
}
