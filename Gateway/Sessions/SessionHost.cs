using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using MQTTnet.Server;
using MQTTnet.Server.Internal;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Gateway.Mqtt;
using OrleansIot.Gateway.Routing;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Sessions;

/// <summary>
/// The sessions this node hosts. MQTTnet holds a session only while its connection lives; this class holds what
/// outlives it:
/// <list type="bullet">
/// <item>an offline persistent session's subscriptions, matched against every message this node routes (they stay
/// in the node's announced filters, so other nodes keep forwarding), and the matching QoS 1/2 messages queued in
/// the session's grain, in order, batched;</item>
/// <item>resuming a session on a new connection here (its subscriptions put back into MQTTnet, its queue
/// delivered) and releasing it when it resumes on another node;</item>
/// <item>wills with a delay, and the list of client ids this node hosts, from which a live node adopts them
/// (connectivity, wills, offline sessions) when this one dies or leaves.</item>
/// </list>
/// This file: connect, subscriptions, disconnect; <c>SessionHost.Offline.cs</c>: matching and queueing for offline
/// sessions (what routing calls, <see cref="Routing.IOfflineSessions"/>); <c>SessionHost.Adoption.cs</c>: adopting the
/// sessions of gone nodes; <see cref="HostList"/>: the list they are adopted from.
/// </summary>
internal sealed partial class SessionHost : BackgroundService, Routing.IOfflineSessions
{
    private const int MaxBatch = 256;
    private const int AdoptionConcurrency = 32;

    /// <summary>
    /// How long a session that moved to another node stays matched here: longer than anything forwarded to this node
    /// before the other nodes learnt the move can take to arrive (a forwarder retries a refused batch within 2 s).
    /// </summary>
    internal static readonly TimeSpan MovedGrace = TimeSpan.FromSeconds(30);

    /// <summary>Room for a PUBLISH's header, topic and properties on top of the largest payload.</summary>
    private const int MaxPacketOverhead = 64 * 1024;

    private readonly IGrainFactory _grains;
    private readonly MqttServer _mqtt;
    private readonly ClusterRouter _router;
    private readonly WillPublisher _wills;
    private readonly LifecycleEvents _lifecycle;
    private readonly SessionOptions _options;
    private readonly LimitsOptions _limits;
    private readonly LocalSubscribers _local;
    private readonly TimeProvider _time;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger<SessionHost> _logger;

    private readonly ConcurrentDictionary<string, HostedClient> _clients = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConnectState> _connecting = new(StringComparer.Ordinal);
    private static readonly SessionAttached NotAttached = new(null, null, false, [], [], 0, null);

    // Offline sessions' filters, owned by client id. Read on every routed message, written on connect/disconnect.
    private readonly ReaderWriterLockSlim _offlineLock = new(LockRecursionPolicy.NoRecursion);
    private readonly TopicTree<string> _offline = new(indexOwners: true);   // owners are clients
    private volatile int _offlineFilters;

    // This node's hosted list, written in batches.
    private readonly HostList _hostList;
    private readonly EndKeeper _ends;

    private readonly SemaphoreSlim _adopting = new(1, 1);
    private CancellationToken _stopping;

    /// <summary>Set when the router's drain has ended during a stop: from then on a failed send to a session's grain gives up.</summary>
    private volatile bool _drained;

    /// <summary>Messages for offline sessions dropped here since the stop began: when any, the others replay what they forwarded.</summary>
    private int _droppedWhileStopping;

    /// <summary>Offline sessions whose messages are being handed to their grains now (one sender each).</summary>
    private int _senders;

    private static readonly TimeSpan StoppingRetry = TimeSpan.FromMilliseconds(100);

    /// <summary>How long an adopted node's list of client ids stays readable (DeadNodeReplay gives up after as long).</summary>
    private static readonly TimeSpan ListKeptAfterAdoption = TimeSpan.FromMinutes(10);

    public SessionHost(IGrainFactory grains, MqttServer mqtt, ClusterRouter router, LocalSubscribers local, HostList hostList, WillPublisher wills, LifecycleEvents lifecycle, EndKeeper ends, IOptions<SessionOptions> options, IOptions<LimitsOptions> limits, TimeProvider time, GatewayMetrics metrics, ILogger<SessionHost> logger)
    {
        _ends = ends;
        _limits = limits.Value;
        _local = local;
        _hostList = hostList;
        _grains = grains;
        _mqtt = mqtt;
        _router = router;
        _wills = wills;
        _lifecycle = lifecycle;
        _options = options.Value;
        _time = time;
        _metrics = metrics;
        _logger = logger;
    }

    private string NodeId => _router.NodeId;

    /// <summary>Session expiry granted to a CONNECT (0: a clean session).</summary>
    public uint GrantExpiry(MqttProtocolVersion version, bool? cleanSession, uint requested)
    {
        var max = (uint)_options.MaxSessionExpiry.TotalSeconds;
        return version == MqttProtocolVersion.V500 ? Math.Min(requested, max) : cleanSession == false ? max : 0;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Connect: attach before CONNACK (session present, takeover), resume after it
    // ---------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Claims the client id and its session for a CONNECT being accepted; false when a session that must be kept
    /// could not be reached (the caller refuses the connection: server unavailable, try again).
    /// </summary>
    public async Task<bool> AttachAsync(ValidatingConnectionEventArgs e, WillMessage? will)
    {
        var expiry = GrantExpiry(e.ProtocolVersion, e.CleanSession, e.SessionExpiryInterval);
        var request = new SessionRequest(e.CleanSession != false, expiry, will, (int)e.ProtocolVersion, _options.MaxQueuedMessages);
        var sessionId = Guid.NewGuid().ToString();
        var clientId = Mqtt.ClientIds.Of(e);
        var stored = expiry > 0 || will is not null;
        var connection = new ClientConnection(sessionId, NodeId, _time.GetUtcNow(), e.RemoteEndPoint?.ToString(), (int)e.ProtocolVersion);
        // Held from before the grain hears of the connection: from then on it hands messages to this node for it.
        var holding = new ConnectState(sessionId, request, NotAttached, null, 0, 0, 0);
        _connecting.AddOrUpdate(clientId, holding, (_, earlier) =>
        {
            holding.Inherit(earlier);
            return holding;
        });

        // The directory first: it knows the connection this one replaces, whatever its kind, and whether the client
        // id's session grain has to take part. A clean session without a will usually ends here, with no activation.
        ConnectionClaim? claim = null;
        try
        {
            claim = await _grains.ConnectionDirectoryOf(clientId).Claim(clientId, connection, stored);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogAttachFailed(_logger, ex, clientId);
            if (stored)
            {
                // Unmarked, the stored session could outlive a later clean start: refuse rather than risk that.
                await GiveUpAsync(clientId, holding);
                return false;
            }
        }

        SessionAttached attached;
        var viaSessionGrain = claim is not { AskSession: false };
        if (!viaSessionGrain)
        {
            attached = claim!.Previous is { } previous
                ? NotAttached with { Previous = previous, PreviousHostNodeId = previous.NodeId != NodeId ? previous.NodeId : null }
                : NotAttached;
        }
        else
        {
            try
            {
                attached = await _grains.Reference<IClientSessionGrain>(clientId).Attach(connection, request);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogAttachFailed(_logger, ex, clientId);
                if (stored)
                {
                    await GiveUpAsync(clientId, holding);
                    return false;
                }

                attached = NotAttached;
            }

            if (!stored && claim is not null && !ReferenceEquals(attached, NotAttached))
            {
                await SettleAsync(clientId, sessionId);
            }
        }

        var adjustedExpiry = e.ProtocolVersion == MqttProtocolVersion.V500 && expiry != e.SessionExpiryInterval ? expiry : (uint?)null;
        var connecting = new ConnectState(sessionId, request, attached, adjustedExpiry, e.KeepAlivePeriod ?? 0, e.MaximumPacketSize, e.ReceiveMaximum)
        {
            Transport = e.ChannelAdapter as Mqtt.Transport.MqttTransport,
            TopicAliasMaximum = e.TopicAliasMaximum,
            ViaSessionGrain = viaSessionGrain,
            // A clean connection elsewhere that the session grain never heard of is closed too.
            ReplacedElsewhere = claim?.Previous is { } replaced && replaced.NodeId != NodeId && replaced.NodeId != attached.PreviousHostNodeId ? replaced.NodeId : null,
            // A partition that could not be reached (or of an earlier release) gave none: this node's clock, by the same rule.
            VersionNumber = claim is { VersionNumber: > 0 } ? claim.VersionNumber : NextLocalVersion(),
            ConnectedAt = connection.Since,
        };
        _connecting.AddOrUpdate(clientId, connecting, (_, earlier) =>
        {
            connecting.Inherit(earlier);
            return connecting;
        });
        return true;
    }

    private long _localVersion;

    /// <summary>A version number from this node's clock, for a connection the connection directory gave none.</summary>
    public long NextLocalVersion()
    {
        long last, next;
        do
        {
            last = Interlocked.Read(ref _localVersion);
            next = ConnectionVersions.Next(last, _time.GetUtcNow());
        }
        while (Interlocked.CompareExchange(ref _localVersion, next, last) != last);
        return next;
    }

    /// <summary>A clean start went through the session grain, which stores nothing now: the next clean connect can skip it.</summary>
    private async Task SettleAsync(string clientId, string sessionId)
    {
        try
        {
            await _grains.ConnectionDirectoryOf(clientId).Settled(clientId, sessionId);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogAttachFailed(_logger, ex, clientId);   // harmless: the next clean connect asks the session grain again
        }
    }

    private async Task GiveUpAsync(string clientId, ConnectState holding)
    {
        if (_connecting.TryRemove(new KeyValuePair<string, ConnectState>(clientId, holding)) && holding.Open() is { Count: > 0 } held)
        {
            await ReturnAsync(clientId, [.. held]);
        }
    }

    /// <summary>CONNACK: session present when the cluster has the session, and the expiry actually granted.</summary>
    public Task InterceptOutboundAsync(InterceptingPacketEventArgs e)
    {
        if (e.Packet is MqttConnAckPacket ack && e.ClientId is { } clientId && _connecting.TryGetValue(clientId, out var state))
        {
            ack.IsSessionPresent |= state.Attached.SessionPresent;
            ack.SharedSubscriptionAvailable = true;   // implemented by the cluster router, not MQTTnet
            ack.ServerKeepAlive = state.KeepAlive;    // as granted (the validator kept it within the limits)
            ack.TopicAliasMaximum = (ushort)_limits.TopicAliasMaximum;
            ack.MaximumPacketSize = (uint)(_limits.MaxPayloadBytes + MaxPacketOverhead);
            ack.ReceiveMaximum = Mqtt.Limits.ReceiveMaximum;   // AWS: at most 100 unacknowledged QoS 1 publishes from a client
            if (state.AdjustedExpiry is { } expiry)
            {
                ack.SessionExpiryInterval = expiry;
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>What the CONNECT of this client id was granted (the connected handler reads it, then <see cref="Opened"/>).</summary>
    public ConnectState? ConnectStateOf(string clientId) => _connecting.TryGetValue(clientId, out var state) ? state : null;

    /// <summary>The connection is registered with its outbox: what is sent to it from now on goes there directly.</summary>
    public void Opened(string clientId, ConnectState state) => _connecting.TryRemove(new KeyValuePair<string, ConnectState>(clientId, state));

    /// <summary>
    /// A connection is up: host its session here, put a resumed session's subscriptions back, release the session
    /// where it was (closing an older connection there), publish a taken-over connection's will, deliver the queue.
    /// </summary>
    public async Task ConnectedAsync(LiveConnection meter, ConnectState state)
    {
        var clientId = meter.ClientId;
        var attached = state.Attached;
        var client = new HostedClient(clientId, meter.SessionId, meter.ProtocolVersion, state.Request.ExpirySeconds)
        {
            ConnectedAt = meter.ConnectedAt,
            ListedLazily = !meter.ViaSessionGrain,
        };
        if (attached.SessionPresent)
        {
            client.SetSubscriptions(attached.Subscriptions);
            await RestoreSubscriptionsAsync(meter, attached.Subscriptions);
            _metrics.SessionsResumed.Add(1);
        }

        // Only now, with its subscriptions taking live messages, does the session stop being matched as offline here:
        // a message routed in between goes both ways (once more, never less; at least once).
        if (_clients.TryGetValue(clientId, out var before))
        {
            RemoveOffline(before);
        }

        _clients[clientId] = client;
        // Every connection is listed, not only persistent ones: if this node dies, its adopter records the
        // connection as lost (thing connectivity, lifecycle event) and publishes the will.
        ChangeList(clientId, new HostedSession(clientId, meter.SessionId, Online: true, meter.ProtocolVersion, meter.ConnectedAt, meter.VersionNumber), urgent: !client.ListedLazily);

        if (attached.PreviousHostNodeId is { } previousHost && previousHost != NodeId)
        {
            await ReleaseElsewhereAsync(clientId, meter.SessionId, previousHost);
        }

        if (state.ReplacedElsewhere is { } replacedOn)
        {
            await ReleaseElsewhereAsync(clientId, meter.SessionId, replacedOn);
        }

        if (attached.PreviousWill is { } previousWill)
        {
            await _wills.PublishAsync(clientId, previousWill);
        }

        if (attached.DroppedWhileOffline > 0)
        {
            // Said before the queue goes out, so whoever watches the log and the client sees it first.
            LogDroppedWhileOffline(_logger, clientId, attached.DroppedWhileOffline, _options.MaxQueuedMessages);
        }

        if (attached.Queued.Count > 0)
        {
            await DeliverLocalAsync(clientId, attached.Queued);
            try
            {
                await _grains.Reference<IClientSessionGrain>(clientId).Resumed(meter.SessionId, attached.Queued[^1].Sequence);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogResumeFailed(_logger, ex, clientId);   // delivered again on the next resume: at least once
            }
        }

        // What arrived for it between CONNECT and now (a replay of a dead node's messages, a relayed queue), after its queue.
        Opened(clientId, state);
        if (state.Open() is { Count: > 0 } early)
        {
            await DeliverLocalAsync(clientId, early);
        }
    }

    private async Task RestoreSubscriptionsAsync(LiveConnection meter, IReadOnlyList<SessionSubscription> subscriptions)
    {
        if (subscriptions.Count == 0)
        {
            return;
        }

        // Put back as they were, except that retained messages are not sent again: this is not a new subscription.
        var filters = subscriptions.Select(s => new MqttTopicFilterBuilder()
            .WithTopic(SharedSubscriptionAlias.ToMqttnet(s.Filter))
            .WithQualityOfServiceLevel((MqttQualityOfServiceLevel)s.Qos)
            .WithNoLocal(s.NoLocal)
            .WithRetainAsPublished(s.RetainAsPublished)
            .WithRetainHandling(MqttRetainHandling.DoNotSendOnSubscribe)
            .Build()).ToList();
        meter.Restoring = true;
        try
        {
            await _mqtt.SubscribeAsync(meter.ClientId, filters);
        }
        finally
        {
            meter.Restoring = false;
        }
    }

    private async Task ReleaseElsewhereAsync(string clientId, string sessionId, string nodeId)
    {
        if (_router.Resolve(nodeId) is not { } node)
        {
            return;   // gone: whatever it held is gone with it, or adopted and released through its adopter
        }

        try
        {
            await node.ReleaseSession(clientId, sessionId).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The old node may be dead or slow: the new connection stays. A stale offline host gets "not host"
            // from the grain at its next enqueue and lets go then.
            LogReleaseFailed(_logger, ex, clientId, nodeId);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // Subscriptions of persistent sessions
    // ---------------------------------------------------------------------------------------------------------

    public async Task SubscribedAsync(LiveConnection meter, string topicFilter, MqttTopicFilter filter)
    {
        if (meter.SessionExpirySeconds == 0 || meter.Restoring || !_clients.TryGetValue(meter.ClientId, out var client))
        {
            return;
        }

        var subscription = new SessionSubscription(topicFilter, (int)filter.QualityOfServiceLevel, filter.NoLocal, filter.RetainAsPublished, 0);
        client.ReplaceSubscription(subscription.Filter, subscription);
        await _grains.Reference<IClientSessionGrain>(meter.ClientId).Subscribed(meter.SessionId, [subscription]);
    }

    public async Task UnsubscribedAsync(LiveConnection meter, string filter)
    {
        if (meter.SessionExpirySeconds == 0 || !_clients.TryGetValue(meter.ClientId, out var client))
        {
            return;
        }

        client.ReplaceSubscription(filter, null);
        await _grains.Reference<IClientSessionGrain>(meter.ClientId).Unsubscribed(meter.SessionId, [filter]);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Disconnect: a persistent session goes offline here
    // ---------------------------------------------------------------------------------------------------------

    /// <summary>
    /// MQTTnet deleted a session (its connection ended): its outbox is closed. A persistent one stays here, offline: its
    /// filters stay announced and are matched by this class from now on. True when it was kept (and is still hosted here).
    /// </summary>
    public bool KeepOffline(string clientId, Routing.Outbox? outbox)
    {
        if (!_clients.TryGetValue(clientId, out var client) || client.ExpirySeconds == 0 || !client.Online)
        {
            outbox?.Close();
            return false;
        }

        // First what the connection had not had acknowledged (sent, then queued: QoS 1/2), in order, then what was
        // routed to it as it closed, then what matches from now on: QoS 1/2 at least once across the reconnect, wherever
        // it happens. The lock keeps a late one behind the rest. A session that moved (taken over on another node while
        // connected here) sends them after it; its filters are withdrawn (false).
        lock (client.Outbox)
        {
            var undelivered = outbox?.Close(late: packet => Divert(client, ForwardedMessages.ToQueued(packet))) ?? [];
            foreach (var packet in undelivered)
            {
                Divert(client, ForwardedMessages.ToQueued(packet));
            }

            client.Online = false;
            client.OfflineSince = _time.GetUtcNow();
        }

        AddOffline(client);
        return client.MovedAt is null;
    }

    /// <summary>The connection's end is recorded; the will (if any) is due now or later.</summary>
    public async Task DisconnectedAsync(LiveConnection meter, bool sessionContinues, WillMessage? will)
    {
        var clientId = meter.ClientId;
        var current = _clients.TryGetValue(clientId, out var client) && client.SessionId == meter.SessionId ? client : null;
        if (current is not null && !sessionContinues)
        {
            await ForgetAsync(current, keepListed: will is { DelaySeconds: > 0 });
        }
        else if (current is not null)
        {
            ChangeList(clientId, new HostedSession(clientId, meter.SessionId, Online: false, meter.ProtocolVersion));
        }

        if (will is null)
        {
            return;
        }

        if (will.DelaySeconds == 0)
        {
            await _wills.PublishAsync(clientId, will);
        }
        else
        {
            ScheduleWill(clientId, meter.SessionId, TimeSpan.FromSeconds(will.DelaySeconds), unlistAfter: !sessionContinues);
        }
    }

    private void ScheduleWill(string clientId, string sessionId, TimeSpan delay, bool unlistAfter)
    {
        _ = Task.Run(async () =>
        {
            try
            {
                await Task.Delay(delay, _time, _stopping);
                var will = await _grains.Reference<IClientSessionGrain>(clientId).ClaimWill(sessionId);
                if (will is not null)
                {
                    await _wills.PublishAsync(clientId, will);
                }

                if (unlistAfter && !_clients.ContainsKey(clientId))
                {
                    ChangeList(clientId, null);
                }
            }
            catch (OperationCanceledException)
            {
                // Stopping: the will stays pending in the session grain; the node adopting this one publishes it.
            }
            catch (Exception ex)
            {
                LogWillFailed(_logger, ex, clientId);
            }
        });
    }

    /// <summary>
    /// The session moved to another node (IRouteNode.ReleaseSession): close the connection here. What was on its way to
    /// it here (unacknowledged on the connection, queued, or forwarded by a node that has not seen the move yet) follows
    /// it through its grain for a while (<see cref="MovedGrace"/>), then it is forgotten here.
    /// </summary>
    public async Task ReleaseAsync(string clientId, string newSessionId, Func<string, Task> closeConnection)
    {
        if (_clients.TryGetValue(clientId, out var client) && client.SessionId != newSessionId)
        {
            await MoveAwayAsync(client);
        }

        await closeConnection(clientId);
    }

    private async Task ForgetAsync(HostedClient client, bool keepListed)
    {
        if (!((ICollection<KeyValuePair<string, HostedClient>>)_clients).Remove(new(client.ClientId, client)))
        {
            return;
        }

        var wasOffline = RemoveOffline(client);
        if (!keepListed)
        {
            ChangeList(client.ClientId, null, urgent: !client.ListedLazily);
        }

        if (wasOffline)
        {
            await _router.SessionEndedAsync(client.ClientId);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        _stopping = stoppingToken;
        using var timer = new PeriodicTimer(_options.HostListFlushInterval, _time);
        try
        {
            for (var tick = 1L; await timer.WaitForNextTickAsync(stoppingToken); tick++)
            {
                await _hostList.FlushAsync(NodeId, all: tick % HostList.LazyFlushes == 0);
                await ExpireAsync();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        // Last write at shutdown: the node that adopts this one must find the sessions that went offline here.
        await FlushListAsync();
    }

    private void ChangeList(string clientId, HostedSession? entry, bool urgent = true) => _hostList.Change(clientId, entry, urgent);

    /// <summary>
    /// Nodes went away, and with their silos the connection directory partitions that lived there: this node's live
    /// connections are registered again (where a partition has no entry for them), once the cluster has moved the
    /// partitions and once more later, as a silo's death is declared some seconds after its node stops renewing.
    /// </summary>
    public void OnNodesGone()
    {
        if (Interlocked.Increment(ref _nodesGone) != 1)
        {
            return;   // passes are scheduled already; they run once more for this one
        }

        _ = Task.Run(async () =>
        {
            try
            {
                int seen;
                do
                {
                    seen = Volatile.Read(ref _nodesGone);
                    foreach (var delay in RegisterAgainAfter)
                    {
                        await Task.Delay(delay, _time, _stopping);
                        await RegisterLiveAsync();
                    }
                }
                while (Interlocked.CompareExchange(ref _nodesGone, 0, seen) != seen);
            }
            catch (OperationCanceledException)
            {
                // stopping
            }
        });
    }

    private static readonly TimeSpan[] RegisterAgainAfter = [TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)];
    private int _nodesGone;

    private async Task RegisterLiveAsync()
    {
        var byPartition = _clients.Values
            .Where(c => c.Online && c.MovedAt is null)
            .GroupBy(c => ConnectionDirectory.PartitionOf(c.ClientId));
        foreach (var partition in byPartition)
        {
            try
            {
                await _grains.Reference<IConnectionDirectoryGrain>(partition.Key)
                    .Register([.. partition.Select(c => new LiveClient(c.ClientId, new ClientConnection(c.SessionId, NodeId, c.ConnectedAt, null, c.ProtocolVersion)))]);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogRegisterFailed(_logger, ex, partition.Key);
            }
        }
    }

    private Task FlushListAsync() => _hostList.FlushAsync(NodeId);

    /// <summary>Offline sessions past their expiry, and sessions that moved away a while ago, are forgotten here.</summary>
    private async Task ExpireAsync()
    {
        var now = _time.GetUtcNow();
        foreach (var client in _clients.Values)
        {
            var expired = !client.Online && client.OfflineSince is { } since && client.ExpirySeconds != uint.MaxValue
                && since.AddSeconds(client.ExpirySeconds) < now;
            var moved = client.MovedAt is { } at && at + MovedGrace < now && !client.Online;
            if (expired || moved)
            {
                await ForgetAsync(client, keepListed: false);
            }
        }
    }

    public override void Dispose()
    {
        _offlineLock.Dispose();
        _adopting.Dispose();
        base.Dispose();
    }

    [LoggerMessage(EventId = 1089, Level = LogLevel.Warning, Message = "Sessions: could not take the connections of gone node {NodeId} out of connection directory partition {Partition}; the adoption is tried again")]
    private static partial void LogReleaseNodeFailed(ILogger logger, Exception exception, int partition, string nodeId);

    [LoggerMessage(EventId = 1048, Level = LogLevel.Warning, Message = "Sessions: could not attach the connection of {ClientId} to its session")]
    private static partial void LogAttachFailed(ILogger logger, Exception exception, string clientId);

    [LoggerMessage(EventId = 1049, Level = LogLevel.Warning, Message = "Sessions: could not confirm the resumed queue of {ClientId}; it may be delivered again")]
    private static partial void LogResumeFailed(ILogger logger, Exception exception, string clientId);

    [LoggerMessage(EventId = 1050, Level = LogLevel.Warning, Message = "Sessions: {Dropped} queued messages of {ClientId} were dropped while it was offline (limit Iot:Sessions:MaxQueuedMessages = {Limit})")]
    private static partial void LogDroppedWhileOffline(ILogger logger, string clientId, long dropped, int limit);

    [LoggerMessage(EventId = 1051, Level = LogLevel.Warning, Message = "Sessions: could not release the session of {ClientId} on node {NodeId}")]
    private static partial void LogReleaseFailed(ILogger logger, Exception exception, string clientId, string nodeId);

    [LoggerMessage(EventId = 1052, Level = LogLevel.Warning, Message = "Sessions: could not publish the delayed will of {ClientId}")]
    private static partial void LogWillFailed(ILogger logger, Exception exception, string clientId);

    [LoggerMessage(EventId = 1053, Level = LogLevel.Warning, Message = "Sessions: could not queue messages for the offline session of {ClientId} (attempt {Attempt}); retrying")]
    private static partial void LogEnqueueFailed(ILogger logger, Exception exception, string clientId, int attempt);

    [LoggerMessage(EventId = 1083, Level = LogLevel.Error, Message = "Sessions: dropped {Count} messages for the offline session of {ClientId}: this node is stopping and the session's grain could not take them")]
    private static partial void LogDroppedStopping(ILogger logger, Exception exception, int count, string clientId);

    [LoggerMessage(EventId = 1085, Level = LogLevel.Error, Message = "Sessions: this node's drain ended ({Timeout}) with {Count} messages of {Sessions} offline sessions not yet taken by their grains; what their last attempts do not deliver is lost with this node")]
    private static partial void LogDrainEndedHolding(ILogger logger, int count, int sessions, TimeSpan timeout);

    [LoggerMessage(EventId = 1054, Level = LogLevel.Warning, Message = "Sessions: could not adopt {ClientId} from node {NodeId}; the node will be adopted again")]
    private static partial void LogAdoptClientFailed(ILogger logger, Exception exception, string clientId, string nodeId);

    [LoggerMessage(EventId = 1055, Level = LogLevel.Information, Message = "Sessions: adopted node {NodeId} ({Count} client ids)")]
    private static partial void LogAdopted(ILogger logger, string nodeId, int count);

    [LoggerMessage(EventId = 1056, Level = LogLevel.Warning, Message = "Sessions: {Count} messages for {ClientId} found no connection here and could not be handed back to its session; dropped")]
    private static partial void LogReturnFailed(ILogger logger, Exception exception, int count, string clientId);

    [LoggerMessage(EventId = 1073, Level = LogLevel.Debug, Message = "Sessions: the session of {ClientId} moved to another node; what reaches it here follows it for a while")]
    private static partial void LogMovedAway(ILogger logger, string clientId);

    [LoggerMessage(EventId = 1074, Level = LogLevel.Information, Message = "Sessions: adopted {Count} client ids handed over by stopping node {NodeId}")]
    private static partial void LogHandedOver(ILogger logger, int count, string nodeId);

    [LoggerMessage(EventId = 1077, Level = LogLevel.Warning, Message = "Sessions: {Count} messages for {ClientId} were to go to its connection on node {NodeId}, which is not known (gone or not met yet); back in its session's queue")]
    private static partial void LogNodeUnknown(ILogger logger, int count, string clientId, string nodeId);

    [LoggerMessage(EventId = 1084, Level = LogLevel.Warning, Message = "Sessions: could not register this node's live connections again in connection directory partition {Partition}; takeovers of them may be missed until they reconnect")]
    private static partial void LogRegisterFailed(ILogger logger, Exception exception, long partition);

    [LoggerMessage(EventId = 1057, Level = LogLevel.Warning, Message = "Sessions: could not adopt the sessions of node {NodeId}")]
    private static partial void LogAdoptFailed(ILogger logger, Exception exception, string nodeId);

    [LoggerMessage(EventId = 1088, Level = LogLevel.Warning, Message = "Sessions: could not clear the list of client ids of adopted node {NodeId}; it stays in storage")]
    private static partial void LogListClearFailed(ILogger logger, Exception exception, string nodeId);

}
