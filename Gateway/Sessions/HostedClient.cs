using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Sessions;

/// <summary>What a CONNECT was granted: its session id, its request, and what attaching found.</summary>
internal sealed record ConnectState(string SessionId, SessionRequest Request, SessionAttached Attached, uint? AdjustedExpiry, ushort KeepAlive, uint MaximumPacketSize, int ReceiveMaximum)
{
    /// <summary>The connection's bytes (null only for a transport other than ours, which nothing here configures).</summary>
    public Mqtt.Transport.MqttTransport? Transport { get; init; }

    /// <summary>The client's MQTT 5 Topic Alias Maximum: how many aliases the server may use towards it.</summary>
    public ushort TopicAliasMaximum { get; init; }

    /// <summary>
    /// The client id's session grain took part in this connect (it records the connection, so it hears of its end).
    /// False for a clean session without a will that only the connection directory knows.
    /// </summary>
    public bool ViaSessionGrain { get; init; } = true;

    /// <summary>A node where the connection directory had this client id connected, and the session grain did not: closed there too.</summary>
    public string? ReplacedElsewhere { get; init; }

    /// <summary>The connection's lifecycle <c>versionNumber</c>, from its claim in the connection directory.</summary>
    public long VersionNumber { get; init; }

    /// <summary>When the connection was accepted, as the connection directory has it.</summary>
    public DateTimeOffset ConnectedAt { get; init; }

    private readonly List<Grains.Abstractions.Sessions.QueuedMessage> _early = [];
    private bool _open;

    /// <summary>
    /// Holds messages handed to the connection before it can take them: the session's grain counts the client as
    /// connected here from CONNECT on, so a replay or a relayed queue can arrive before the connection has its outbox.
    /// False once the connection is open (send to it instead).
    /// </summary>
    public bool TryHold(Grains.Abstractions.Sessions.QueuedMessage message)
    {
        lock (_early)
        {
            if (_open)
            {
                return false;
            }

            _early.Add(message);
            return true;
        }
    }

    /// <summary>The connection can take messages now: what was held for it (delivered after its session's queue).</summary>
    public IReadOnlyList<Grains.Abstractions.Sessions.QueuedMessage> Open()
    {
        lock (_early)
        {
            _open = true;
            var held = _early.ToList();
            _early.Clear();
            return held;
        }
    }

    /// <summary>Takes over what an earlier CONNECT of the same client id held and never opened (that connection failed).</summary>
    public void Inherit(ConnectState earlier)
    {
        foreach (var message in earlier.Open())
        {
            TryHold(message);
        }
    }
}

/// <summary>A client id hosted on this node: connected here, or a persistent session offline here.</summary>
internal sealed class HostedClient(string clientId, string sessionId, int protocolVersion, uint expirySeconds)
{
    private SessionSubscription[] _subscriptions = [];

    public string ClientId { get; } = clientId;
    public string SessionId { get; } = sessionId;
    public int ProtocolVersion { get; } = protocolVersion;
    public uint ExpirySeconds { get; } = expirySeconds;
    public volatile bool Online = true;

    /// <summary>When its current connection was accepted (what the connection directory reports).</summary>
    public DateTimeOffset ConnectedAt { get; init; }

    /// <summary>
    /// A clean connection without a will (no session grain): nothing is replayed or adopted for it, so its entry in
    /// the host list may wait for the list's next full write (<see cref="HostList.LazyFlushes"/>).
    /// </summary>
    public bool ListedLazily { get; init; }
    public DateTimeOffset? OfflineSince { get; set; }

    /// <summary>
    /// When the session moved to another node (released to a connection there, or adopted by a node this one handed
    /// its sessions to). It stays matched here for a while (<see cref="SessionHost.MovedGrace"/>), its routes withdrawn:
    /// a message that was on its way here goes through the session's grain to wherever it lives now.
    /// </summary>
    public DateTimeOffset? MovedAt { get; set; }

    /// <summary>Messages on their way to the session grain's queue, and whether a sender is running.</summary>
    public List<QueuedMessage> Outbox { get; } = [];
    public bool Sending { get; set; }

    /// <summary>The persistent session's subscriptions (copy on write: read while matching).</summary>
    public IReadOnlyList<SessionSubscription> Subscriptions => Volatile.Read(ref _subscriptions);

    public void SetSubscriptions(IReadOnlyList<SessionSubscription> subscriptions) => Volatile.Write(ref _subscriptions, [.. subscriptions]);

    /// <summary>Drops the subscription to <paramref name="filter"/> and adds <paramref name="replacement"/>, if any.</summary>
    public void ReplaceSubscription(string filter, SessionSubscription? replacement)
    {
        lock (Outbox)
        {
            SetSubscriptions([.. _subscriptions.Where(s => s.Filter != filter), .. replacement is null ? [] : new[] { replacement }]);
        }
    }
}
