namespace OrleansIot.Grains.Abstractions.Sessions;

/// <summary>
/// One partition of the cluster's directory of live connections: which connection of a client id is current, on
/// which node, for every session kind. A new connection claims its client id here and learns the connection it takes
/// over. A clean session without a will needs nothing else: it costs an entry here, not a client-session grain
/// activation (AWS IoT and EMQX fleets are mostly such devices).
/// <para>
/// The partition also remembers, stored, which of its client ids may have a stored session in their
/// <see cref="IClientSessionGrain"/> (a persistent session or a will was asked for): a clean connect of such a client
/// id still goes through its session grain, which ends the stored session as a clean start must. The mark is stored
/// before the session grain can store anything, and cleared only once a clean connect went through the grain.
/// </para>
/// The partition writes its client ids' connects and disconnects to the fleet index's connectivity part, in batches
/// (<c>Iot:FleetIndex:WriteBehind</c>), in the order it saw them: a takeover's late disconnect, which no longer
/// releases anything, changes nothing there either.
/// The live entries are in memory: if the partition's silo goes away, they are rebuilt from what the nodes re-register
/// (<see cref="Register"/>), and until then a takeover of such a connection is missed (its keep-alive closes it).
/// </summary>
[Alias("OrleansIot.IConnectionDirectoryGrain")]
public interface IConnectionDirectoryGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// A connection of <paramref name="clientId"/> was accepted: it becomes the current one. <paramref name="stored"/>:
    /// it asked for what its session grain stores (a persistent session or a will). Returns the connection it replaces,
    /// whether the session grain must take part in this connect, and the connection's <c>versionNumber</c>
    /// (<see cref="ConnectionVersions"/>).
    /// </summary>
    [Alias("Claim")]
    Task<ConnectionClaim> Claim(string clientId, ClientConnection connection, bool stored);

    /// <summary>A clean connect went through the session grain, which now stores nothing: its mark goes, unless another connection claimed since.</summary>
    [Alias("Settled")]
    Task Settled(string clientId, string sessionId);

    /// <summary>
    /// Client ids whose session grains store something this node found without a mark: sessions adopted from a node of
    /// an earlier release, which stored sessions without marking them. Marked, so a clean connect ends them.
    /// </summary>
    [Alias("Mark")]
    Task Mark(IReadOnlyList<string> clientIds);

    /// <summary>Connections ended (or died with their node); an entry is removed only while it is still that connection.</summary>
    [Alias("Release")]
    Task Release(IReadOnlyList<ReleasedConnection> connections);

    /// <summary>
    /// A node is gone (its adopter calls this): its entries are removed and returned, so their ends can be recorded
    /// as lost connections. Until then the directory lists them as open.
    /// </summary>
    [Alias("ReleaseNode")]
    Task<IReadOnlyList<LiveClient>> ReleaseNode(string nodeId);

    /// <summary>
    /// Live connections a node holds, registered again after this partition may have lost them (its silo left): an
    /// entry is added only where the partition has none, never over a newer claim.
    /// </summary>
    [Alias("Register")]
    Task Register(IReadOnlyList<LiveClient> connections);

    /// <summary>The current connection of a client id, if any.</summary>
    [Alias("Get"), Orleans.Concurrency.ReadOnly]
    Task<ClientConnection?> Get(string clientId);
}

/// <summary>
/// What <see cref="IConnectionDirectoryGrain.Claim"/> found: the replaced connection, whether the session grain must be
/// asked, and the connection's lifecycle <c>versionNumber</c> (0 from a partition of an earlier release).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ConnectionClaim")]
public sealed record ConnectionClaim(
    [property: Id(0)] ClientConnection? Previous,
    [property: Id(1)] bool AskSession,
    [property: Id(2)] long VersionNumber = 0);

/// <summary>An ended connection of a client id: when and why (AWS <c>disconnectReason</c>), for the fleet index, where known.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ReleasedConnection")]
public sealed record ReleasedConnection(
    [property: Id(0)] string ClientId,
    [property: Id(1)] string SessionId,
    [property: Id(2)] string? Reason = null,
    [property: Id(3)] DateTimeOffset? At = null);

/// <summary>A live connection of a client id, as its node registers it again.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.LiveClient")]
public sealed record LiveClient(
    [property: Id(0)] string ClientId,
    [property: Id(1)] ClientConnection Connection);

/// <summary>
/// The lifecycle events' <c>versionNumber</c>: every claim of a client id goes through its one partition, which hands
/// out a number above every number it handed out before and not below the Unix time in milliseconds. So the numbers of
/// a client id grow across its connections, its partition's moves and the cluster's restarts, as long as the clocks of
/// the nodes do not step back further than the time between two connections of a client id. AWS IoT promises less:
/// its numbers may skip, and reset after an hour without a connection.
/// </summary>
public static class ConnectionVersions
{
    /// <summary>The number after <paramref name="last"/> at <paramref name="now"/>.</summary>
    public static long Next(long last, DateTimeOffset now) => Math.Max(last + 1, now.ToUnixTimeMilliseconds());
}

/// <summary>Which directory partition holds a client id: a stable hash, the same on every node and in every release.</summary>
public static class ConnectionDirectory
{
    /// <summary>The number of partitions. Part of the wire contract: every node must agree on it.</summary>
    public const int Partitions = 64;

    /// <summary>The partition of a client id (FNV-1a over its UTF-16 code units: not <see cref="string.GetHashCode()"/>, which differs per process).</summary>
    public static long PartitionOf(string clientId)
    {
        var hash = 2166136261u;
        foreach (var c in clientId)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return hash % Partitions;
    }

    /// <summary>The partition that holds a client id's connection.</summary>
    public static IConnectionDirectoryGrain ConnectionDirectoryOf(this IGrainFactory grains, string clientId) =>
        grains.Reference<IConnectionDirectoryGrain>(PartitionOf(clientId));
}
