namespace OrleansIot.Grains.Abstractions.Things;

/// <summary>A connection a gateway accepted.</summary>
/// <param name="SessionId">Unique per connection (AWS's <c>sessionIdentifier</c>).</param>
/// <param name="ClientId">The MQTT client id.</param>
/// <param name="RemoteAddress">The client's address and port as the gateway saw it.</param>
/// <param name="Node">The gateway node that holds the connection.</param>
/// <param name="ProtocolVersion">MQTT protocol level: 4 for 3.1.1, 5 for 5.0.</param>
/// <param name="At">When the connection was accepted.</param>
/// <param name="VersionNumber">
/// The connection's lifecycle <c>versionNumber</c>, as the connection directory handed it out; 0 from a gateway of an
/// earlier release, which left the count to the thing.
/// </param>
[GenerateSerializer, Immutable, Alias("OrleansIot.ConnectionOpened")]
public sealed record ConnectionOpened(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string ClientId,
    [property: Id(2)] string? RemoteAddress,
    [property: Id(3)] string Node,
    [property: Id(4)] int ProtocolVersion,
    [property: Id(5)] DateTimeOffset At,
    [property: Id(6)] long VersionNumber = 0);

/// <summary>A connection that ended.</summary>
/// <param name="SessionId">The session that ended.</param>
/// <param name="Reason">AWS IoT <c>disconnectReason</c> (see <see cref="DisconnectReasons"/>).</param>
/// <param name="ClientInitiated">True when the client sent DISCONNECT.</param>
/// <param name="At">When the gateway saw the connection end.</param>
/// <param name="FinalUsage">Usage counted on this connection and not yet flushed to the thing.</param>
/// <param name="Opened">
/// How the connection began, for a thing that was not told at its start (the usual case: a thing hears of a
/// connection once, when it ends); null from a gateway of an earlier release.
/// </param>
[GenerateSerializer, Immutable, Alias("OrleansIot.ConnectionClosed")]
public sealed record ConnectionClosed(
    [property: Id(0)] string SessionId,
    [property: Id(1)] string Reason,
    [property: Id(2)] bool ClientInitiated,
    [property: Id(3)] DateTimeOffset At,
    [property: Id(4)] UsageDelta FinalUsage,
    [property: Id(5)] ConnectionOpened? Opened = null);

/// <summary>Usage counted by a gateway since its previous flush.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.UsageDelta")]
public sealed record UsageDelta(
    [property: Id(0)] long MessagesIn,
    [property: Id(1)] long BytesIn,
    [property: Id(2)] long MessagesOut,
    [property: Id(3)] long BytesOut,
    [property: Id(4)] long MessagesDropped = 0,
    [property: Id(5)] long RuleExecutions = 0,
    [property: Id(6)] long JobExecutions = 0)
{
    /// <summary>No usage.</summary>
    public static readonly UsageDelta None = new(0, 0, 0, 0);

    /// <summary>True when nothing was counted.</summary>
    public bool IsEmpty => MessagesIn == 0 && BytesIn == 0 && MessagesOut == 0 && BytesOut == 0 && MessagesDropped == 0 && RuleExecutions == 0 && JobExecutions == 0;
}

/// <summary>What <c>GET /api/things/{thingName}/status</c> returns.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ThingStatus")]
public sealed record ThingStatus(
    [property: Id(0)] string ThingName,
    [property: Id(1)] ThingConnectivity Connectivity,
    [property: Id(2)] ThingUsage Usage,
    [property: Id(3)] DateTimeOffset FirstSeenAt,
    [property: Id(4)] IReadOnlyList<PastConnection>? History = null);

/// <summary>
/// A connection of the thing that is over, newest first in <see cref="ThingStatus.History"/>. <see cref="EndedAt"/> is
/// null while a connection that another one replaced (a takeover, or its node died) has not reported its end.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.PastConnection")]
public sealed record PastConnection(
    [property: Id(0)] string? SessionId,
    [property: Id(1)] DateTimeOffset? ConnectedAt,
    [property: Id(2)] DateTimeOffset? EndedAt,
    [property: Id(3)] string? DisconnectReason,
    [property: Id(4)] string? Node,
    [property: Id(5)] string? RemoteAddress,
    [property: Id(6)] int? ProtocolVersion);

/// <summary>Connectivity, shaped like AWS fleet indexing's <c>connectivity</c> plus the session details.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ThingConnectivity")]
public sealed record ThingConnectivity(
    [property: Id(0)] bool Connected,
    [property: Id(1)] DateTimeOffset? Since,
    [property: Id(2)] string? SessionId,
    [property: Id(3)] string? RemoteAddress,
    [property: Id(4)] string? Node,
    [property: Id(5)] int? ProtocolVersion,
    [property: Id(6)] string? DisconnectReason,
    [property: Id(7)] DateTimeOffset? LastDisconnectAt);

/// <summary>
/// Per-device metering counters since the thing was first seen. <see cref="MessagesDropped"/>: messages for it that
/// were not delivered while it was connected (its queue was full: it read slower than its publishers published; or a
/// message was larger than its MQTT 5 Maximum Packet Size).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ThingUsage")]
public sealed record ThingUsage(
    [property: Id(0)] long MessagesIn,
    [property: Id(1)] long BytesIn,
    [property: Id(2)] long MessagesOut,
    [property: Id(3)] long BytesOut,
    [property: Id(4)] long MessagesDropped = 0);

/// <summary>
/// One UTC day of a thing's usage (<c>GET /api/usage</c>): its messages and bytes in and out, the messages for it that
/// were dropped, the minutes it was connected, its shadow requests (accepted or refused), the rules its messages
/// triggered (each rule whose WHERE matched one message counts one) and its job executions that ended (succeeded,
/// failed, rejected, timed out, canceled or removed).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.DailyUsage")]
public sealed record DailyUsage(
    [property: Id(0)] string Date,
    [property: Id(1)] long MessagesIn,
    [property: Id(2)] long BytesIn,
    [property: Id(3)] long MessagesOut,
    [property: Id(4)] long BytesOut,
    [property: Id(5)] long MessagesDropped,
    [property: Id(6)] double ConnectedMinutes,
    [property: Id(7)] long ShadowOperations,
    [property: Id(8)] long RuleExecutions = 0,
    [property: Id(9)] long JobExecutions = 0);

/// <summary>AWS IoT <c>disconnectReason</c> values (lifecycle events and fleet indexing).</summary>
public static class DisconnectReasons
{
    /// <summary>The client sent DISCONNECT.</summary>
    public const string ClientInitiated = "CLIENT_INITIATED_DISCONNECT";
    /// <summary>The connection dropped without DISCONNECT.</summary>
    public const string ConnectionLost = "CONNECTION_LOST";
    /// <summary>Another connection with the same client id took over.</summary>
    public const string DuplicateClientId = "DUPLICATE_CLIENTID";
    /// <summary>The server closed the connection.</summary>
    public const string ServerInitiated = "SERVER_INITIATED_DISCONNECT";
    /// <summary>The client broke a protocol rule or limit (e.g. a payload over the size limit).</summary>
    public const string ClientError = "CLIENT_ERROR";
    /// <summary>An operator closed the connection through the API (AWS DeleteConnection).</summary>
    public const string ApiInitiated = "API_INITIATED_DISCONNECT";
    /// <summary>The node shut down while the client was connected.</summary>
    public const string ServerError = "SERVER_ERROR";

    /// <summary>Authentication or authorization failed (a denied publish or subscribe of MQTT 3.1.1, a certificate no longer ACTIVE).</summary>
    public const string AuthError = "AUTH_ERROR";
}
