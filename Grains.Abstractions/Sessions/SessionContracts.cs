using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Abstractions.Sessions;

// Stored as JSON in the session grain's state (System.Text.Json): property names are the storage schema.

/// <summary>
/// What a CONNECT asks for. <see cref="ExpirySeconds"/> 0: the session ends with the connection;
/// <see cref="uint.MaxValue"/>: never expires. Persistent sessions do not cross MQTT versions (as AWS IoT).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.SessionRequest")]
public sealed record SessionRequest(
    [property: Id(0)] bool CleanStart,
    [property: Id(1)] uint ExpirySeconds,
    [property: Id(2)] WillMessage? Will,
    [property: Id(3)] int ProtocolVersion,
    [property: Id(4)] int MaxQueuedMessages);

/// <summary>A will (last will and testament) and its MQTT 5 delay.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.WillMessage")]
public sealed record WillMessage(
    [property: Id(0)] ForwardedMessage Message,
    [property: Id(1)] bool Retain,
    [property: Id(2)] uint DelaySeconds);

/// <summary>One subscription of a persistent session, with its MQTT 5 options.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.SessionSubscription")]
public sealed record SessionSubscription(
    [property: Id(0)] string Filter,
    [property: Id(1)] int Qos,
    [property: Id(2)] bool NoLocal,
    [property: Id(3)] bool RetainAsPublished,
    [property: Id(4)] uint SubscriptionIdentifier);

/// <summary>A message for an offline session, already shaped for it (granted QoS, retain flag, subscription ids).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.QueuedMessage")]
public sealed record QueuedMessage(
    [property: Id(0)] ForwardedMessage Message,
    [property: Id(1)] bool Retain,
    [property: Id(2)] IReadOnlyList<uint>? SubscriptionIdentifiers,
    [property: Id(3)] long Sequence,
    [property: Id(4)] DateTimeOffset QueuedAt);

/// <summary>
/// What <see cref="IClientSessionGrain.Attach"/> found. <see cref="PreviousWill"/>: the will of a connection this
/// one takes over, to publish now (AWS publishes it on DUPLICATE_CLIENTID; MQTT 5 keeps it back when the session
/// continues and the will has a delay).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.SessionAttached")]
public sealed record SessionAttached(
    [property: Id(0)] ClientConnection? Previous,
    [property: Id(1)] string? PreviousHostNodeId,
    [property: Id(2)] bool SessionPresent,
    [property: Id(3)] IReadOnlyList<SessionSubscription> Subscriptions,
    [property: Id(4)] IReadOnlyList<QueuedMessage> Queued,
    [property: Id(5)] long DroppedWhileOffline,
    [property: Id(6)] WillMessage? PreviousWill);

/// <summary>How a connection ended: whether its will is due, and the MQTT 5 DISCONNECT's session expiry (if it sent one).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.SessionEnd")]
public sealed record SessionEnd(
    [property: Id(0)] bool PublishWill,
    [property: Id(1)] uint? ExpirySeconds);

/// <summary>
/// The answer to <see cref="IClientSessionGrain.Enqueue"/>: not accepted when the caller no longer hosts the
/// session (drop it there); <see cref="OnlineNodeId"/> when the client is connected again: deliver there.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.EnqueueResult")]
public sealed record EnqueueResult(
    [property: Id(0)] bool Accepted,
    [property: Id(1)] string? OnlineNodeId);

/// <summary>
/// The answer to <see cref="IClientSessionGrain.Replay"/>: how many of the messages the session took, and when its
/// client is connected on a live node, that node and the shaped messages for it (nothing was queued).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ReplayResult")]
public sealed record ReplayResult(
    [property: Id(0)] int Taken,
    [property: Id(1)] string? OnlineNodeId,
    [property: Id(2)] IReadOnlyList<QueuedMessage> ForOnline);

/// <summary>What an adopting node takes over from a dead node for one client id.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.SessionAdopted")]
public sealed record SessionAdopted(
    [property: Id(0)] ClientConnection? LostConnection,
    [property: Id(1)] bool Persistent,
    [property: Id(2)] IReadOnlyList<SessionSubscription> Subscriptions,
    [property: Id(3)] WillMessage? PendingWill,
    [property: Id(4)] TimeSpan WillDueIn,
    [property: Id(5)] string? WillSessionId,
    [property: Id(6)] uint ExpirySeconds);

/// <summary>
/// A client id a node hosts: connected there, or (persistent) offline with its subscriptions matched there. A
/// connection's start (when, and its lifecycle version number) is listed too, so the node's adopter can record the
/// connection and publish its end with its number if the node dies; null and 0 in lists of an earlier release. Not its
/// address: a node rewrites a list shard whole at each flush, and a ramp of connects changes every shard every
/// second, so each field here costs every connect (architecture.md, "Sessions").
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.HostedSession")]
public sealed record HostedSession(
    [property: Id(0)] string ClientId,
    [property: Id(1)] string SessionId,
    [property: Id(2)] bool Online,
    [property: Id(3)] int ProtocolVersion,
    [property: Id(4)] DateTimeOffset? ConnectedAt = null,
    [property: Id(5)] long VersionNumber = 0);

/// <summary>
/// A persistent session as operators see it. <see cref="Delivery"/>: how delivery to its live connection stands, filled
/// in by the API from the node holding the connection (the grain leaves it null).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.SessionInfo")]
public sealed record SessionInfo(
    [property: Id(0)] string? HostNodeId,
    [property: Id(1)] bool Connected,
    [property: Id(2)] uint ExpirySeconds,
    [property: Id(3)] IReadOnlyList<SessionSubscription> Subscriptions,
    [property: Id(4)] int QueuedMessages,
    [property: Id(5)] long DroppedMessages,
    [property: Id(6)] DateTimeOffset? DisconnectedAt,
    [property: Id(7)] Routing.ConnectionDelivery? Delivery = null);
