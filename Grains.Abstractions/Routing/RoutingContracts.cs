namespace OrleansIot.Grains.Abstractions.Routing;

/// <summary>
/// A gateway node as the other nodes see it: an Orleans observer hosted by the node's process. Nodes send each
/// other route changes and forwarded messages directly, node to node; no grain sits on the publish path.
/// </summary>
[Alias("OrleansIot.IRouteNode")]
public interface IRouteNode : IGrainObserver
{
    /// <summary>Delivers messages published on another node to this node's matching subscribers, in order.</summary>
    [Alias("Deliver")]
    Task Deliver(ForwardedBatch batch);

    /// <summary>Another node's subscription filters changed (or, with <see cref="RouteUpdate.Snapshot"/>, all of them).</summary>
    [Alias("ApplyRoutes")]
    Task ApplyRoutes(RouteUpdate update);

    /// <summary>This node's current filters, as a snapshot update.</summary>
    [Alias("GetRoutes")]
    Task<RouteUpdate> GetRoutes();

    /// <summary>
    /// Closes this node's connection of a client if it is still the given session (AWS <c>disconnectReason</c> in
    /// <paramref name="reason"/>); false when there is no such connection here any more.
    /// </summary>
    [Alias("DisconnectClient")]
    Task<bool> DisconnectClient(string clientId, string sessionId, string reason, DisconnectOptions options);

    /// <summary>
    /// The client's session moved to another node (a connection resumed or replaced it there): close this node's
    /// connection of it, if any (MQTT 5 reason 0x8E), and forget what this node kept of the session.
    /// </summary>
    [Alias("ReleaseSession")]
    Task ReleaseSession(string clientId, string newSessionId);

    /// <summary>Delivers messages queued for a session to its live connection on this node.</summary>
    [Alias("DeliverToClient")]
    Task DeliverToClient(string clientId, IReadOnlyList<Sessions.QueuedMessage> messages);

    /// <summary>A retained message was set or cleared on another node (newest change wins).</summary>
    [Alias("ApplyRetained")]
    Task ApplyRetained(RetainedChange change);

    /// <summary>Every retained message this node holds, for a node that just met it.</summary>
    [Alias("GetRetained")]
    Task<IReadOnlyList<RetainedChange>> GetRetained();

    /// <summary>Identity or access data changed: re-check this node's affected connections.</summary>
    [Alias("AccessChanged")]
    Task AccessChanged(Policies.AccessChange change);

    /// <summary>
    /// A topic rule was created, changed or deleted: read the rule catalog again, so that the messages the rules
    /// select go on the telemetry stream from now on. A node of an earlier release does not know this call; it reads
    /// the catalog every second anyway.
    /// </summary>
    [Alias("RulesChanged")]
    Task RulesChanged();

    /// <summary>How delivery to a client's live connection on this node stands, if it is still the given session.</summary>
    [Alias("GetDelivery")]
    Task<ConnectionDelivery?> GetDelivery(string clientId, string sessionId);

    /// <summary>
    /// A node that is stopping hands this node its sessions (persistent sessions offline there, pending wills) before it
    /// says goodbye: adopted as if it had died, at once. True when this node adopted them (the directory let it claim
    /// the node, and every session was taken).
    /// </summary>
    [Alias("AdoptNode")]
    Task<bool> AdoptNode(string stoppingNodeId);

    /// <summary>
    /// A node that is stopping has handed on everything this node forwarded to it (to its sessions' grains, or to where
    /// they live now) and takes no more: what this node kept to replay to it if it died is not needed.
    /// </summary>
    [Alias("Drained")]
    Task Drained(string stoppingNodeId);
}

/// <summary>
/// Delivery to one live connection (its outbox): messages queued and not yet sent, QoS 1/2 messages sent and not yet
/// acknowledged, the window it allows (Receive Maximum), messages dropped since it connected because its queue was
/// full, and whether its publishers are being held back (their acknowledgements wait) because it reads too slowly.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ConnectionDelivery")]
public sealed record ConnectionDelivery(
    [property: Id(0)] int Queued,
    [property: Id(1)] int InFlight,
    [property: Id(2)] int Window,
    [property: Id(3)] long Dropped,
    [property: Id(4)] bool Congested);

/// <summary>A live node and the version of its route table at its last lease renewal.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.LiveNode")]
public sealed record LiveNode(
    [property: Id(0)] RouteNodeEntry Entry,
    [property: Id(1)] long RouteVersion);

/// <summary>How <see cref="IRouteNode.DisconnectClient"/> closes a connection (AWS DeleteConnection's options).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.DisconnectOptions")]
public sealed record DisconnectOptions(
    [property: Id(0)] bool PreventWill,
    [property: Id(1)] bool EndSession);

/// <summary>A node's routing identity: unique per process incarnation, with the reference to reach it.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.RouteNodeEntry")]
public sealed record RouteNodeEntry(
    [property: Id(0)] string NodeId,
    [property: Id(1)] IRouteNode Reference);

/// <summary>
/// A change of a node's filter set. Versions grow by one per change, so a receiver that missed one asks for a
/// snapshot instead of drifting. <see cref="SharedMembers"/>: how many members the node has of each shared
/// subscription (<c>$share/…</c>) that the change adds or whose membership changed (all of them in a snapshot), so
/// other nodes spread a group's messages over nodes in proportion to their members.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.RouteUpdate")]
public sealed record RouteUpdate(
    [property: Id(0)] RouteNodeEntry From,
    [property: Id(1)] long Version,
    [property: Id(2)] bool Snapshot,
    [property: Id(3)] IReadOnlyList<string> Added,
    [property: Id(4)] IReadOnlyList<string> Removed,
    [property: Id(5)] IReadOnlyDictionary<string, int>? SharedMembers = null);

/// <summary>
/// One published message on its way to another node's subscribers; with <see cref="SharedTarget"/> (a
/// <c>$share/group/filter</c>), to one member of that shared subscription there instead. <see cref="MessageId"/>
/// identifies one publish across the cluster (a session queue takes a replayed copy of a message it holds only once).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ForwardedMessage")]
public sealed record ForwardedMessage(
    [property: Id(0)] string Topic,
    [property: Id(1)] byte[] Payload,
    [property: Id(2)] int Qos,
    [property: Id(3)] string SenderClientId,
    [property: Id(4)] string? ContentType,
    [property: Id(5)] string? ResponseTopic,
    [property: Id(6)] byte[]? CorrelationData,
    [property: Id(7)] IReadOnlyList<KeyValuePair<string, byte[]>>? UserProperties,
    [property: Id(8)] uint MessageExpiryInterval,
    [property: Id(9)] int PayloadFormatIndicator,
    [property: Id(10)] string? SharedTarget = null,
    [property: Id(11)] Guid MessageId = default);

/// <summary>Messages one node forwards to another in one call, in publish order.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ForwardedBatch")]
public sealed record ForwardedBatch(
    [property: Id(0)] string FromNodeId,
    [property: Id(1)] IReadOnlyList<ForwardedMessage> Messages);

/// <summary>
/// Where nodes find each other, and which dead nodes left sessions behind. Only joins, leaves and periodic
/// refreshes go through it, never publishes or subscriptions. Leases are in memory (after the grain moves, nodes
/// re-join within one refresh period); the set of nodes that joined is stored, so that the sessions of a node
/// that died (or of a whole cluster that restarted) are adopted by a live node.
/// </summary>
[Alias("OrleansIot.IRouteDirectoryGrain")]
public interface IRouteDirectoryGrain : IGrainWithIntegerKey
{
    /// <summary>
    /// Registers (or refreshes the lease of) a node with the version of its route table; returns every live node
    /// with its last reported version (so a node that missed a route change notices and re-reads), itself
    /// included, and the nodes that are gone without their sessions being adopted yet.
    /// </summary>
    [Alias("Join")]
    Task<DirectoryView> Join(RouteNodeEntry node, long routeVersion, TimeSpan lease);

    /// <summary>A node stops gracefully: it is gone at once (its offline sessions are adopted by the others).</summary>
    [Alias("Leave")]
    Task Leave(string nodeId);

    /// <summary>Claims the adoption of a gone node's sessions; false when another node has claimed it.</summary>
    [Alias("Claim")]
    Task<bool> Claim(string goneNodeId, string claimerNodeId);

    /// <summary>
    /// A stopping node leaves the live nodes and names the node that adopts its sessions now (a claim for it, so no
    /// other node adopts them meanwhile; it runs out as any claim does if the adopter fails).
    /// </summary>
    [Alias("HandOver")]
    Task HandOver(string stoppingNodeId, string adopterNodeId);

    /// <summary>A live node by id (one that joined a moment ago included), or null when it is not live.</summary>
    [Alias("Find")]
    Task<RouteNodeEntry?> Find(string nodeId);

    /// <summary>The gone node's sessions are adopted: forget it.</summary>
    [Alias("Adopted")]
    Task Adopted(string goneNodeId, string claimerNodeId);
}

/// <summary>The live nodes (with their route versions), and the gone nodes whose sessions wait for adoption.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.DirectoryView")]
public sealed record DirectoryView(
    [property: Id(0)] IReadOnlyList<LiveNode> Live,
    [property: Id(1)] IReadOnlyList<string> Orphans);

/// <summary>
/// A retained message set (with <see cref="Message"/>) or cleared (without) on some node at <see cref="ModifiedAt"/>.
/// Concurrent changes of one topic resolve to the newest; ties by origin node id.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.RetainedChange")]
public sealed record RetainedChange(
    [property: Id(0)] string Topic,
    [property: Id(1)] ForwardedMessage? Message,
    [property: Id(2)] DateTimeOffset ModifiedAt,
    [property: Id(3)] string OriginNodeId)
{
    /// <summary>Whether this change wins over one made at <paramref name="at"/> by <paramref name="origin"/>.</summary>
    public bool IsNewerThan(DateTimeOffset at, string origin) =>
        ModifiedAt > at || (ModifiedAt == at && string.CompareOrdinal(OriginNodeId, origin) > 0);
}

/// <summary>
/// What one node reports about itself every <c>Iot:Routing:StatsInterval</c> (the console's cluster page,
/// <c>GET /api/nodes</c>): its live MQTT connections, its broker counters since it started, and their rates over the
/// last interval.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.NodeStats")]
public sealed record NodeStats(
    [property: Id(0)] string NodeId,
    [property: Id(1)] string Name,
    [property: Id(2)] DateTimeOffset StartedAt,
    [property: Id(3)] DateTimeOffset ReportedAt,
    [property: Id(4)] int Connections,
    [property: Id(5)] long Connects,
    [property: Id(6)] long PublishIn,
    [property: Id(7)] long PublishOut,
    [property: Id(8)] long DeliveryDropped,
    [property: Id(9)] double PublishInPerSecond,
    [property: Id(10)] double PublishOutPerSecond);

/// <summary>The nodes' latest reports (in memory: after the grain moves, every node reports again within one interval).</summary>
[Alias("OrleansIot.INodeStatsGrain")]
public interface INodeStatsGrain : IGrainWithIntegerKey
{
    /// <summary>A node's latest report replaces its previous one.</summary>
    [Alias("Report")]
    Task Report(NodeStats stats);

    /// <summary>A node stopping gracefully: it is gone from the list at once.</summary>
    [Alias("Leave")]
    Task Leave(string nodeId);

    /// <summary>The nodes that reported within <paramref name="fresh"/>, by name.</summary>
    [Alias("List"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<NodeStats>> List(TimeSpan fresh);
}
