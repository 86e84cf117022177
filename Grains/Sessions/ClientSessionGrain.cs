using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Grains.Sessions;

/// <summary>
/// One client id's connection and session. Only what must outlive a node is stored: a persistent session
/// (subscriptions, queued messages, expiry, host node) or a will. A clean session without a will costs no write.
/// The live connection of a connect that came here is kept in memory too (for a will's and a queue's hand-over); the
/// connection directory (<see cref="IConnectionDirectoryGrain"/>) decides takeovers, and a clean session without a
/// will only goes there.
/// </summary>
[GrainType("client-session")]
internal sealed class ClientSessionGrain(
    [PersistentState("session", StorageNames.Default)] IPersistentState<SessionState> state,
    TimeProvider time) : Grain, IClientSessionGrain
{
    /// <summary>How long ids of messages handed over from the queue are remembered (longer than a node's replay window).</summary>
    private static readonly TimeSpan HandedOverMemory = TimeSpan.FromMinutes(2);

    // Ids of queued messages handed to a connection lately (in memory only): a dead node's replay of the same publish
    // (a copy from the forwarder's window) is then not delivered a second time. Lost with the activation: at least once.
    private readonly Queue<(Guid Id, DateTimeOffset At)> _handedOver = new();
    private readonly HashSet<Guid> _handedOverIds = [];

    private SessionState S => state.State;

    private void RememberHandedOver(IEnumerable<QueuedMessage> messages, DateTimeOffset now)
    {
        while (_handedOver.TryPeek(out var oldest) && now - oldest.At > HandedOverMemory)
        {
            _handedOverIds.Remove(_handedOver.Dequeue().Id);
        }

        foreach (var id in messages.Select(m => m.Message.MessageId).Where(id => id != Guid.Empty))
        {
            if (_handedOverIds.Add(id))
            {
                _handedOver.Enqueue((id, now));
            }
        }
    }

    public async Task<SessionAttached> Attach(ClientConnection connection, SessionRequest request)
    {
        var s = S;
        var now = time.GetUtcNow();
        var previous = s.Connected && s.SessionId != connection.SessionId && s.NodeId is not null
            ? new ClientConnection(s.SessionId!, s.NodeId, s.ConnectedSince ?? now)
            : null;
        var previousHost = s.NodeId != connection.NodeId ? s.NodeId : null;
        var present = !request.CleanStart && s.SessionId is not null && s.ExpirySeconds > 0 && !IsExpired(now)
            && s.ProtocolVersion == request.ProtocolVersion;
        var previousWill = previous is not null && s.Will is { } oldWill && (oldWill.DelaySeconds == 0 || !present)
            ? oldWill with { DelaySeconds = 0 }
            : null;
        if (!present)
        {
            s.Subscriptions.Clear();
            s.Queue.Clear();
            s.Dropped = 0;
        }

        var dropped = s.Dropped;
        s.Dropped = 0;
        s.SessionId = connection.SessionId;
        s.NodeId = connection.NodeId;
        s.Connected = true;
        // A connection made after an adoption supersedes it: an adoption of the gone node retried later (its first
        // try failed part-way) must not take this live connection for the one that died with that node.
        s.AdoptedFrom = null;
        s.ConnectedSince = connection.Since;
        s.DisconnectedAt = null;
        s.ExpirySeconds = request.ExpirySeconds;
        s.ProtocolVersion = request.ProtocolVersion;
        s.MaxQueuedMessages = request.MaxQueuedMessages;
        // A new connection before the will delay has passed cancels the old will (MQTT 5 3.1.2.5).
        s.Will = request.Will;
        s.WillSessionId = connection.SessionId;
        s.WillDueAt = null;
        await SaveAsync();
        RememberHandedOver(s.Queue, now);
        return new SessionAttached(previous, previousHost, present, [.. s.Subscriptions], [.. s.Queue], dropped, previousWill);
    }

    public async Task Resumed(string sessionId, long deliveredUpTo)
    {
        if (S.SessionId == sessionId && S.Queue.RemoveAll(m => m.Sequence <= deliveredUpTo) > 0)
        {
            await SaveAsync();
        }
    }

    public async Task<WillMessage?> Detach(string sessionId, SessionEnd end)
    {
        var s = S;
        if (s.SessionId != sessionId || !s.Connected)
        {
            return null;
        }

        var now = time.GetUtcNow();
        s.Connected = false;
        s.DisconnectedAt = now;
        if (end.ExpirySeconds is { } expiry && s.ExpirySeconds > 0)
        {
            s.ExpirySeconds = expiry;   // MQTT 5: a DISCONNECT may change a persistent session's expiry (not make one)
        }

        WillMessage? due = null;
        if (end.PublishWill && s.Will is { } will)
        {
            // The will goes out when its delay or the session ends, whichever is first (MQTT 5 3.1.3.2.2).
            var delay = Math.Min(will.DelaySeconds, s.ExpirySeconds);
            due = will with { DelaySeconds = delay };
            if (delay == 0)
            {
                s.Will = null;
            }
            else
            {
                s.WillDueAt = now.AddSeconds(delay);
            }
        }
        else
        {
            s.Will = null;
        }

        if (s.ExpirySeconds == 0)
        {
            s.Subscriptions.Clear();
            s.Queue.Clear();
        }

        await SaveAsync();
        return due;
    }

    public async Task<WillMessage?> ClaimWill(string sessionId)
    {
        var s = S;
        if (s.Will is not { } will || s.WillDueAt is null || s.WillSessionId != sessionId)
        {
            return null;
        }

        s.Will = null;
        s.WillDueAt = null;
        await SaveAsync();
        return will with { DelaySeconds = 0 };
    }

    public async Task Subscribed(string sessionId, IReadOnlyList<SessionSubscription> subscriptions)
    {
        var s = S;
        if (s.SessionId != sessionId || s.ExpirySeconds == 0)
        {
            return;
        }

        foreach (var subscription in subscriptions)
        {
            s.Subscriptions.RemoveAll(x => x.Filter == subscription.Filter);
            s.Subscriptions.Add(subscription);
        }

        await SaveAsync();
    }

    public async Task Unsubscribed(string sessionId, IReadOnlyList<string> filters)
    {
        var s = S;
        if (s.SessionId == sessionId && s.Subscriptions.RemoveAll(x => filters.Contains(x.Filter)) > 0)
        {
            await SaveAsync();
        }
    }

    public async Task<EnqueueResult> Enqueue(string hostNodeId, string offlineSessionId, IReadOnlyList<QueuedMessage> messages)
    {
        var s = S;
        var now = time.GetUtcNow();
        if (s.ExpirySeconds == 0 || IsExpired(now))
        {
            if (s.Subscriptions.Count > 0 || s.Queue.Count > 0)
            {
                s.Subscriptions.Clear();
                s.Queue.Clear();
                await SaveAsync();
            }

            return new EnqueueResult(false, null);
        }

        if (s.Connected && s.SessionId != offlineSessionId)
        {
            // The client is back (perhaps on another node): the host hands the messages to its connection.
            return new EnqueueResult(true, s.NodeId);
        }

        if (s.NodeId != hostNodeId)
        {
            return new EnqueueResult(false, null);
        }

        Append(s, messages, now);
        await SaveAsync();
        return new EnqueueResult(true, null);
    }

    /// <summary>
    /// Appends to the queue, bounded (oldest dropped, counted). A message the queue holds already (same publish: the
    /// host queued it and a node that forwarded it to a dead node replays it) is taken once.
    /// </summary>
    private static void Append(SessionState s, IEnumerable<QueuedMessage> messages, DateTimeOffset now)
    {
        HashSet<Guid>? held = null;
        foreach (var message in messages)
        {
            if (message.Message.MessageId != Guid.Empty
                && !(held ??= [.. s.Queue.Select(q => q.Message.MessageId).Where(id => id != Guid.Empty)]).Add(message.Message.MessageId))
            {
                continue;
            }

            s.Queue.Add(message with { Sequence = ++s.LastSequence, QueuedAt = now });
        }

        var excess = s.Queue.Count - Math.Max(1, s.MaxQueuedMessages);
        if (excess > 0)
        {
            s.Queue.RemoveRange(0, excess);   // oldest first, as EMQX and MQTTnet do
            s.Dropped += excess;
        }
    }

    public async Task<ReplayResult> Replay(string deadNodeId, IReadOnlyList<Abstractions.Routing.ForwardedMessage> messages)
    {
        var s = S;
        var now = time.GetUtcNow();
        if (s.ExpirySeconds == 0 || IsExpired(now))
        {
            return new ReplayResult(0, null, []);
        }

        var clientId = this.GetPrimaryKeyString();
        var shaped = messages
            .Where(m => m.MessageId == Guid.Empty || !_handedOverIds.Contains(m.MessageId))   // handed over from the queue already
            .Select(m => SessionMatch.Shape(clientId, s.Subscriptions, m, retain: false))
            .OfType<QueuedMessage>()
            .ToList();
        if (shaped.Count == 0)
        {
            return new ReplayResult(0, null, []);
        }

        if (s.Connected && s.NodeId != deadNodeId)
        {
            var queued = s.Queue.Select(q => q.Message.MessageId).Where(id => id != Guid.Empty).ToHashSet();
            shaped.RemoveAll(m => queued.Contains(m.Message.MessageId));   // in the queue: it goes out with it
            RememberHandedOver(shaped, now);
            return new ReplayResult(shaped.Count, s.NodeId, shaped);   // back on a live node: handed to its connection there
        }

        Append(s, shaped, now);
        await SaveAsync();
        return new ReplayResult(shaped.Count, null, []);
    }

    public async Task<(bool Kept, string? OnlineNodeId)> Undeliverable(string nodeId, IReadOnlyList<QueuedMessage> messages)
    {
        var s = S;
        var now = time.GetUtcNow();
        if (s.ExpirySeconds == 0 || IsExpired(now))
        {
            return (false, null);
        }

        if (s.Connected && s.NodeId != nodeId)
        {
            return (true, s.NodeId);   // connected elsewhere now: handed to that node
        }

        Append(s, messages, now);   // delivered with the queue on its next connection
        await SaveAsync();
        return (true, null);
    }

    public async Task<SessionAdopted?> Adopt(string deadNodeId, string newHostNodeId)
    {
        var s = S;
        if (s.NodeId != deadNodeId && !(s.NodeId == newHostNodeId && s.AdoptedFrom == deadNodeId))
        {
            return null;
        }

        var now = time.GetUtcNow();
        ClientConnection? lost = null;
        if (s.Connected)
        {
            // The connection died with its node: a non-graceful disconnect, so its will is due.
            lost = new ClientConnection(s.SessionId!, s.NodeId!, s.ConnectedSince ?? now);
            s.Connected = false;
            s.DisconnectedAt = now;
            if (s.Will is { } will)
            {
                s.WillDueAt = now.AddSeconds(Math.Min(will.DelaySeconds, s.ExpirySeconds));
            }
        }

        var persistent = s.ExpirySeconds > 0 && !IsExpired(now);
        s.NodeId = newHostNodeId;
        s.AdoptedFrom = deadNodeId;
        if (!persistent)
        {
            s.Subscriptions.Clear();
            s.Queue.Clear();
        }

        var dueIn = s.WillDueAt is { } due && due > now ? due - now : TimeSpan.Zero;
        await SaveAsync();
        return new SessionAdopted(lost, persistent, [.. s.Subscriptions], s.WillDueAt is null ? null : s.Will, dueIn, s.WillSessionId, s.ExpirySeconds);
    }

    public Task<ClientConnection?> GetConnection() => Task.FromResult(
        S is { Connected: true, SessionId: { } id, NodeId: { } node } ? new ClientConnection(id, node, S.ConnectedSince ?? default) : null);

    public Task<SessionInfo?> GetSession()
    {
        var s = S;
        var now = time.GetUtcNow();
        // Queued messages whose MQTT 5 expiry has passed are never delivered, so they are not counted.
        return Task.FromResult(s.ExpirySeconds == 0 || IsExpired(now)
            ? null
            : new SessionInfo(s.NodeId, s.Connected, s.ExpirySeconds, [.. s.Subscriptions], s.Queue.Count(q => !HasExpired(q, now)), s.Dropped, s.DisconnectedAt));
    }

    private static bool HasExpired(QueuedMessage queued, DateTimeOffset now) =>
        queued.Message.MessageExpiryInterval > 0 && queued.QueuedAt.AddSeconds(queued.Message.MessageExpiryInterval) <= now;

    private bool IsExpired(DateTimeOffset now) =>
        !S.Connected && S.DisconnectedAt is { } at && S.ExpirySeconds != uint.MaxValue && at.AddSeconds(S.ExpirySeconds) < now;

    /// <summary>Stores the state when there is something to keep; clears it when the last such thing is gone.</summary>
    private async Task SaveAsync()
    {
        if (S.ExpirySeconds > 0 || S.Will is not null)
        {
            await state.WriteStateAsync();
        }
        else if (state.RecordExists)
        {
            // Keep the in-memory connection (takeover needs it) while the stored record goes.
            var live = (S.SessionId, S.NodeId, S.Connected, S.ConnectedSince, S.ProtocolVersion, S.DisconnectedAt);
            await state.ClearStateAsync();
            (S.SessionId, S.NodeId, S.Connected, S.ConnectedSince, S.ProtocolVersion, S.DisconnectedAt) = live;
        }
    }
}

// Stored as JSON (System.Text.Json): the property names are the storage schema. Append, never rename.
[GenerateSerializer, Alias("OrleansIot.SessionState")]
public sealed class SessionState
{
    [Id(0)] public string? SessionId { get; set; }
    [Id(1)] public string? NodeId { get; set; }
    [Id(2)] public bool Connected { get; set; }
    [Id(3)] public DateTimeOffset? ConnectedSince { get; set; }
    [Id(4)] public DateTimeOffset? DisconnectedAt { get; set; }
    [Id(5)] public uint ExpirySeconds { get; set; }
    [Id(6)] public int ProtocolVersion { get; set; }
    [Id(7)] public List<SessionSubscription> Subscriptions { get; set; } = [];
    [Id(8)] public List<QueuedMessage> Queue { get; set; } = [];
    [Id(9)] public long LastSequence { get; set; }
    [Id(10)] public long Dropped { get; set; }
    [Id(11)] public int MaxQueuedMessages { get; set; } = 1000;
    [Id(12)] public WillMessage? Will { get; set; }
    [Id(13)] public string? WillSessionId { get; set; }
    [Id(14)] public DateTimeOffset? WillDueAt { get; set; }
    [Id(15)] public string? AdoptedFrom { get; set; }
}
