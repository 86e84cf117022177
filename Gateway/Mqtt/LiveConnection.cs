using System.Collections;
using System.Net;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// One live MQTT connection, as every part of the gateway sees it: its identity and access, its session's options, its
/// outbox and transport, and the usage counted on it since the last flush (a few interlocked adds on the publish path;
/// the thing grain is called once per flush interval). Handlers find it in MQTTnet's session items
/// (<see cref="From"/>), others by client id (<see cref="LiveConnections"/>).
/// </summary>
internal sealed class LiveConnection(string clientId, string sessionId, int protocolVersion, EndPoint? remoteEndPoint)
{
    private const string SessionItemKey = "orleansiot.connection";

    private long _messagesIn;
    private long _bytesIn;
    private long _messagesOut;
    private long _bytesOut;
    private long _dropped;

    public string ClientId { get; } = clientId;
    public string SessionId { get; } = sessionId;
    public int ProtocolVersion { get; } = protocolVersion;
    public EndPoint? RemoteEndPoint { get; } = remoteEndPoint;

    /// <summary>
    /// The filters this connection subscribed to, for the subscriptions-per-connection limit. Only the
    /// connection's own packet loop touches it (MQTTnet handles a connection's packets one at a time).
    /// </summary>
    public HashSet<string> Subscriptions { get; } = new(StringComparer.Ordinal);

    /// <summary>AWS lifecycle <c>versionNumber</c> of this connection (from its claim in the connection directory).</summary>
    public long VersionNumber { get; set; }

    /// <summary>When the connection was accepted.</summary>
    public DateTimeOffset ConnectedAt { get; init; }

    /// <summary>How the connection began, as its thing records it (<paramref name="node"/>: this node's name).</summary>
    public ConnectionOpened Opened(string node) =>
        new(SessionId, ClientId, RemoteEndPoint?.ToString(), node, ProtocolVersion, ConnectedAt, VersionNumber);

    /// <summary>Set when this node closed the connection, so the disconnect is reported as server initiated.</summary>
    public string? ServerDisconnectReason { get; set; }

    /// <summary>Session expiry granted at connect: 0 for a clean session, which ends with the connection.</summary>
    public uint SessionExpirySeconds { get; init; }

    /// <summary>The will taken from the CONNECT (published by this gateway, not by MQTTnet), if any.</summary>
    public Grains.Abstractions.Sessions.WillMessage? Will { get; init; }

    /// <summary>The client id's session grain records this connection (false: only the connection directory does).</summary>
    public bool ViaSessionGrain { get; init; } = true;

    /// <summary>The client's MQTT 5 Maximum Packet Size (0: none): larger messages are not sent to it.</summary>
    public uint MaximumPacketSize { get; init; }

    /// <summary>The client's MQTT 5 Receive Maximum (0: none given, i.e. 65,535).</summary>
    public int ReceiveMaximum { get; init; }

    /// <summary>
    /// A message published on someone's behalf (a client's will, an HTTPS publish): not a connection, so no connection
    /// limits apply, and its caller authorized it (<see cref="Access"/> is null).
    /// </summary>
    public bool OnBehalf { get; init; }

    /// <summary>Closed by DeleteConnection with <c>preventWillMessage=true</c>.</summary>
    public bool PreventWill { get; set; }

    /// <summary>Closed by DeleteConnection with <c>cleanSession=true</c>: the persistent session ends too.</summary>
    public bool EndSession { get; set; }

    /// <summary>Its thing was told of it at its start (dynamic groups follow connectivity): its end goes to the thing at once.</summary>
    public bool ThingToldAtConnect { get; set; }

    /// <summary>Everything on its way to this connection (set once the connection is accepted).</summary>
    public Routing.Outbox? Outbox { get; set; }

    /// <summary>The connection's bytes (set once the connection is accepted).</summary>
    public Transport.MqttTransport? Transport { get; set; }

    // Per-second publish budgets (Limits.TryTakePublish, under lock on this meter) and log throttling.
    internal long BudgetSecond;
    internal int PublishesThisSecond;
    internal double ByteTokens;
    internal long ByteTokensAt;
    internal long LastLimitLogSecond;
    internal int FiltersInSubscribe;   // of the SUBSCRIBE being handled (reset by the inbound packet hook)
    internal int InboundUnacknowledged;   // the client's QoS 1/2 publishes not yet completed (MQTT 5 Receive Maximum)

    /// <summary>What the connection may do (null only when <see cref="OnBehalf"/>: a will authorized at its CONNECT, an HTTPS publish by the API).</summary>
    public Security.ConnectionAccess? Access { get; set; }

    /// <summary>AWS's <c>principalIdentifier</c> of the connection.</summary>
    public string Principal => Access?.Principal ?? "anonymous";

    /// <summary>True while a resumed session's subscriptions are put back (not new subscriptions: no events).</summary>
    public bool Restoring { get; set; }

    public static LiveConnection? From(IDictionary? sessionItems) => sessionItems?[SessionItemKey] as LiveConnection;

    public void AttachTo(IDictionary sessionItems) => sessionItems[SessionItemKey] = this;

    public void CountIn(long bytes)
    {
        Interlocked.Increment(ref _messagesIn);
        Interlocked.Add(ref _bytesIn, bytes);
        Counted();
    }

    public void CountOut(long bytes)
    {
        Interlocked.Increment(ref _messagesOut);
        Interlocked.Add(ref _bytesOut, bytes);
        Counted();
    }

    /// <summary>A message for this client was not delivered (its queue was full, or it was larger than it accepts).</summary>
    public void CountDropped()
    {
        Interlocked.Increment(ref _dropped);
        Counted();
    }

    /// <summary>
    /// Where this connection puts itself when it counts something and was not waiting to be flushed yet
    /// (<see cref="LiveConnections"/>): the flush visits the connections that counted, not every idle one.
    /// </summary>
    internal System.Collections.Concurrent.ConcurrentQueue<LiveConnection>? CountedQueue { get; set; }

    private int _queued;

    /// <summary>Something was counted: the connection waits for the flush (once; nothing before it has a queue).</summary>
    internal void Counted()
    {
        if (CountedQueue is { } queue && Volatile.Read(ref _queued) == 0 && Interlocked.Exchange(ref _queued, 1) == 0)
        {
            queue.Enqueue(this);
        }
    }

    /// <summary>The flush has it: what is counted from now on queues it again.</summary>
    internal void Dequeued() => Volatile.Write(ref _queued, 0);

    /// <summary>Takes what was counted since the last take; each count is handed out exactly once.</summary>
    public UsageDelta Take() => new(
        Interlocked.Exchange(ref _messagesIn, 0),
        Interlocked.Exchange(ref _bytesIn, 0),
        Interlocked.Exchange(ref _messagesOut, 0),
        Interlocked.Exchange(ref _bytesOut, 0),
        Interlocked.Exchange(ref _dropped, 0));

    /// <summary>Puts back a delta whose flush failed, so the next flush carries it.</summary>
    public void Restore(UsageDelta delta)
    {
        Interlocked.Add(ref _messagesIn, delta.MessagesIn);
        Interlocked.Add(ref _bytesIn, delta.BytesIn);
        Interlocked.Add(ref _messagesOut, delta.MessagesOut);
        Interlocked.Add(ref _bytesOut, delta.BytesOut);
        Interlocked.Add(ref _dropped, delta.MessagesDropped);
        Counted();
    }
}
