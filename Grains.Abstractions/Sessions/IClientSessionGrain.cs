using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Abstractions.Sessions;

/// <summary>
/// An MQTT client id across the cluster: its live connection (one per client id: a new connection on any node
/// takes over), and its session when the client asked for a persistent one: subscriptions, the QoS 1/2 messages
/// queued while it is offline, its will, and the node that hosts it (matches messages for it while it is offline).
/// Stored (PostgreSQL in PostgreSQL mode) when there is something to keep: a persistent session or a will.
/// A clean session without a will does not come here (unless the client id may have a stored session): the
/// <see cref="IConnectionDirectoryGrain"/> alone records its connection, and takes over across session kinds.
/// </summary>
[Alias("OrleansIot.IClientSessionGrain")]
public interface IClientSessionGrain : IGrainWithStringKey
{
    /// <summary>
    /// A connection of this client id was accepted on a node. Returns the connection and the host it replaces,
    /// and, when the session resumes, its subscriptions and queued messages (the latter stay queued until
    /// <see cref="Resumed"/>). A pending delayed will is cancelled, as MQTT 5 requires.
    /// </summary>
    [Alias("Attach")]
    Task<SessionAttached> Attach(ClientConnection connection, SessionRequest request);

    /// <summary>The new connection has the queued messages up to <paramref name="deliveredUpTo"/>: drop them.</summary>
    [Alias("Resumed")]
    Task Resumed(string sessionId, long deliveredUpTo);

    /// <summary>
    /// A connection ended; ignored unless it is still the current one. Returns the will to publish: at once when
    /// its <see cref="WillMessage.DelaySeconds"/> is 0, otherwise after that delay through <see cref="ClaimWill"/>.
    /// </summary>
    [Alias("Detach")]
    Task<WillMessage?> Detach(string sessionId, SessionEnd end);

    /// <summary>Takes the pending will of an ended connection, once; null when the client came back meanwhile.</summary>
    [Alias("ClaimWill")]
    Task<WillMessage?> ClaimWill(string sessionId);

    /// <summary>A persistent session's subscriptions were added or replaced (by filter).</summary>
    [Alias("Subscribed")]
    Task Subscribed(string sessionId, IReadOnlyList<SessionSubscription> subscriptions);

    /// <summary>A persistent session's subscriptions were removed.</summary>
    [Alias("Unsubscribed")]
    Task Unsubscribed(string sessionId, IReadOnlyList<string> filters);

    /// <summary>
    /// Queues messages for the offline session, sent by the node hosting it (bounded: the oldest are dropped).
    /// <paramref name="offlineSessionId"/> is the connection the host saw end: while the grain still has that
    /// connection as current (its disconnect is on its way), the messages are queued, not relayed to it.
    /// </summary>
    [Alias("Enqueue")]
    Task<EnqueueResult> Enqueue(string hostNodeId, string offlineSessionId, IReadOnlyList<QueuedMessage> messages);

    /// <summary>
    /// Messages that were on their way to (or inside) <paramref name="deadNodeId"/> when it died, replayed by the node
    /// that forwarded them: those this persistent session's subscriptions take are queued (its connection died with
    /// that node, or it is offline), or, when the client is connected elsewhere now, returned shaped with that node for
    /// the caller to hand over. Not accepted for a session that is not persistent (it ended with its connection).
    /// At least once: a message the dead node had delivered already comes again.
    /// </summary>
    [Alias("Replay")]
    Task<ReplayResult> Replay(string deadNodeId, IReadOnlyList<ForwardedMessage> messages);

    /// <summary>
    /// Messages handed to <paramref name="nodeId"/> for this client's connection, which that node does not have (a
    /// CONNECT attached here and then failed, or the connection ended meanwhile): a persistent session queues them
    /// (they go out on its next connection), or returns the node the client is connected to now for the caller to
    /// hand them to; a clean session's are dropped (null, false).
    /// </summary>
    [Alias("Undeliverable")]
    Task<(bool Kept, string? OnlineNodeId)> Undeliverable(string nodeId, IReadOnlyList<QueuedMessage> messages);

    /// <summary>
    /// The node hosting this session died: <paramref name="newHostNodeId"/> takes it over. Null when the session
    /// is not (or no longer) the dead node's. Repeatable by the same adopter.
    /// </summary>
    [Alias("Adopt")]
    Task<SessionAdopted?> Adopt(string deadNodeId, string newHostNodeId);

    /// <summary>The live connection, if any.</summary>
    [Alias("GetConnection"), Orleans.Concurrency.ReadOnly]
    Task<ClientConnection?> GetConnection();

    /// <summary>The persistent session, if there is one (for the API and operators).</summary>
    [Alias("GetSession"), Orleans.Concurrency.ReadOnly]
    Task<SessionInfo?> GetSession();
}

/// <summary>
/// Which nodes host sessions (node id = one process incarnation) and what each hosted: the list a surviving node
/// reads to adopt a dead node's clients. The node writes it in batches (about once a second).
/// </summary>
[Alias("OrleansIot.INodeSessionsGrain")]
public interface INodeSessionsGrain : IGrainWithStringKey
{
    /// <summary>Adds or replaces entries (by client id) and removes others, in one write.</summary>
    [Alias("Update")]
    Task Update(IReadOnlyList<HostedSession> upserted, IReadOnlyList<string> removedClientIds);

    /// <summary>Everything the node hosted at its last write.</summary>
    [Alias("Get"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<HostedSession>> Get();

    /// <summary>The node was adopted: its list goes.</summary>
    [Alias("Clear")]
    Task Clear();
}

/// <summary>
/// A live connection of a client id: its session id, the node holding it, since when, and (for the thing's status,
/// where known) the client's address, MQTT protocol level and lifecycle version number.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ClientConnection")]
public sealed record ClientConnection(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string NodeId,
    [property: Id(2)] DateTimeOffset Since,
    [property: Id(3)] string? RemoteAddress = null,
    [property: Id(4)] int ProtocolVersion = 0,
    [property: Id(5)] long VersionNumber = 0)
{
    /// <summary>The node's name: its routing id without the incarnation (<c>name/incarnation</c>).</summary>
    public string NodeName => NodeId.LastIndexOf('/') is var slash and > 0 ? NodeId[..slash] : NodeId;
}
