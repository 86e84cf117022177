using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// Makes the gateways of all nodes behave as one broker. MQTTnet delivers to this node's subscribers; this class
/// delivers to everyone else's:
/// <list type="bullet">
/// <item>it keeps the set of filters subscribed on this node (reference-counted over clients) and announces each
/// change to every other node before the SUBACK goes out;</item>
/// <item>it keeps every other node's filters in one topic trie (a replicated route table), so a publish is matched
/// locally, with no grain call, and forwarded only to nodes that have a matching subscriber, batched per node;</item>
/// <item>it delivers what other nodes forward to it to its local subscribers by injecting it into MQTTnet.</item>
/// </list>
/// Nodes find each other through <see cref="IRouteDirectoryGrain"/> (leases renewed every
/// <see cref="RoutingOptions.RefreshInterval"/>); messages and route changes go node to node.
/// </summary>
internal sealed partial class ClusterRouter : IHostedService, IDisposable
{
    private readonly IGrainFactory _grains;
    private readonly MqttServer _mqtt;
    private readonly LocalSubscribers _local;
    private readonly Mqtt.LiveConnections _connections;
    private readonly Retained.RetainedMessages _retained;
    private readonly RoutingOptions _options;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger<ClusterRouter> _logger;
    private readonly TimeProvider _time;
    private readonly DeadNodeReplay _deadNodes;
    private readonly IServiceProvider _services;

    // This node's subscriptions: filter -> number of local clients holding it; client -> its filters.
    private readonly Lock _localLock = new();
    private readonly Dictionary<string, int> _localFilters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _clientFilters = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Dictionary<string, int>> _sharedMembers = new(StringComparer.Ordinal);   // $share filter -> client -> QoS
    private long _version;

    // Everyone else's subscriptions. Read on every publish, written on route changes (rare): a reader-writer lock.
    private readonly ReaderWriterLockSlim _remoteLock = new(LockRecursionPolicy.NoRecursion);
    private readonly TopicTree<string> _remoteRoutes = new();
    private readonly Dictionary<string, RemoteNode> _remoteNodes = new(StringComparer.Ordinal);
    private readonly SharedRoutes _shared = new();   // every node's shared subscriptions, this one's included

    private readonly CancellationTokenSource _stopping = new();
    private volatile bool _accepting;   // MQTT has started: forwarded messages are taken from then on, while stopping too
    private int _closed;                // stopping, and the drain began: forwarded batches are refused (their senders keep them)
    private int _delivering;            // forwarded batches being routed now
    private long _lastInjected;         // Environment.TickCount64 of the last batch another node forwarded here
    private RouteNodeEntry? _self;
    private Task? _refreshLoop;

    [ThreadStatic]
    private static HashSet<string>? t_matches;

    public ClusterRouter(IGrainFactory grains, MqttServer mqtt, LocalSubscribers local, Mqtt.LiveConnections connections, Retained.RetainedMessages retained, NodeIdentity node, IOptions<RoutingOptions> options, TimeProvider time, GatewayMetrics metrics, IServiceProvider services, ILogger<ClusterRouter> logger)
    {
        _services = services;
        _time = time;
        _deadNodes = new DeadNodeReplay(grains, ResolveAsync, time, metrics, logger);
        _local = local;
        _grains = grains;
        _connections = connections;
        _retained = retained;
        _mqtt = mqtt;
        _options = options.Value;
        _metrics = metrics;
        _logger = logger;
        NodeId = $"{node.Name}/{Guid.NewGuid():N}";
    }

    /// <summary>This process incarnation's routing identity.</summary>
    public string NodeId { get; }

    /// <summary>This node as the others call it; set when the router starts.</summary>
    private IRouteNode _endpoint = null!;

    /// <summary>The persistent sessions offline here; set when the router starts.</summary>
    private IOfflineSessions? _sessions;

    /// <summary>This node as other nodes and grains reach it.</summary>
    public RouteNodeEntry Self => _self ?? throw new InvalidOperationException("The router has not started.");

    private IRouteDirectoryGrain Directory => _grains.GetGrain<IRouteDirectoryGrain>(0);

    private TimeSpan Lease => _options.RefreshInterval * 3;

    // ---------------------------------------------------------------------------------------------------------
    // Lifecycle
    // ---------------------------------------------------------------------------------------------------------

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        // Resolved now, not injected: the endpoint and the session host depend on this router themselves.
        _endpoint = _services.GetRequiredService<RouteNodeEndpoint>();
        _sessions = _services.GetService<IOfflineSessions>();
        _self = new RouteNodeEntry(NodeId, _grains.CreateObjectReference<IRouteNode>(_endpoint));
        await RefreshAsync();
        _refreshLoop = RefreshLoopAsync(_stopping.Token);
    }

    /// <summary>
    /// Leaves the cluster without losing what was promised (the MQTT server has stopped already: every connection here
    /// is closed, persistent sessions are offline here):
    /// <list type="number">
    /// <item>another node adopts this node's sessions now and announces their filters, so the others route to it;</item>
    /// <item>then the goodbye: nothing is subscribed here any more;</item>
    /// <item>what the others forwarded before they heard it is still taken (and follows each session to its new home),
    /// and what this node's forwarders and sessions hold is sent before they stop.</item>
    /// </list>
    /// Whatever still misses this node is replayed by its senders once it is gone, to where each session lives.
    /// </summary>
    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        if (_refreshLoop is not null)
        {
            await _refreshLoop;
        }

        await HandOverSessionsAsync(cancellationToken);
        try
        {
            // Tell the others at once that nothing is subscribed here any more, then leave the directory.
            RouteUpdate goodbye;
            lock (_localLock)
            {
                goodbye = new RouteUpdate(Self, ++_version, Snapshot: true, [], []);
            }

            await BroadcastAsync(goodbye);
            await Directory.Leave(NodeId).WaitAsync(_options.BroadcastTimeout, cancellationToken);
        }
        catch (Exception ex)
        {
            // Also when the host's shutdown timeout cancelled it: the node is going either way, and the others drop it
            // when its lease runs out; the rest of this stop still runs (its forwarders hand back what they hold).
            LogLeaveFailed(_logger, ex);
        }

        await DrainAsync(cancellationToken);
        List<RemoteNode> nodes;
        _remoteLock.EnterWriteLock();
        try
        {
            nodes = [.. _remoteNodes.Values];
            _remoteNodes.Clear();
        }
        finally
        {
            _remoteLock.ExitWriteLock();
        }

        // What this node's publishers were acknowledged for and its forwarders still hold goes out first (bounded: a
        // node that does not answer replays nothing from here, as this node is going).
        await Task.WhenAll(nodes.Select(node => node.Forwarder.DrainAsync(DrainTimeout)));
        foreach (var node in nodes)
        {
            await node.Forwarder.DisposeAsync();
        }

        if (_self is not null)
        {
            _grains.DeleteObjectReference<IRouteNode>(_self.Reference);
        }
    }

    private static readonly TimeSpan HandOverTimeout = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan DrainedTimeout = TimeSpan.FromSeconds(1);   // only saves repeats: a stop does not wait longer for it
    private static readonly TimeSpan Quiet = TimeSpan.FromMilliseconds(250);

    /// <summary>Asks a live node to adopt this node's sessions now (its own stop does not wait for the lease to run out).</summary>
    private async Task HandOverSessionsAsync(CancellationToken cancellationToken)
    {
        var peers = Peers();

        if (_sessions is null || peers.Length == 0)
        {
            return;   // alone: its sessions wait in storage for the next node that starts (it adopts them)
        }

        var adopter = peers[Random.Shared.Next(peers.Length)];
        try
        {
            await Directory.HandOver(NodeId, adopter.NodeId).WaitAsync(_options.BroadcastTimeout, cancellationToken);
            var adopted = await adopter.Reference.AdoptNode(NodeId).WaitAsync(HandOverTimeout, cancellationToken);
            LogHandedOver(_logger, adopter.NodeId, adopted);
        }
        catch (Exception ex)
        {
            // The others adopt them as they adopt a dead node's once the claim runs out; until then what is routed here
            // still reaches them (below), and what misses this node is replayed by its senders.
            LogHandOverFailed(_logger, ex, adopter.NodeId);
        }
    }

    /// <summary>
    /// Takes what the others forwarded before they heard the goodbye, and lets the sessions hand it on. Then it takes no
    /// more (a sender keeps what it could not deliver, to replay it once this node is gone), and when its sessions handed
    /// on everything they had it tells the others: what they forwarded here is accounted for and need not be replayed.
    /// </summary>
    private async Task DrainAsync(CancellationToken cancellationToken)
    {
        var until = Environment.TickCount64 + (long)DrainTimeout.TotalMilliseconds;
        try
        {
            while (Environment.TickCount64 - Interlocked.Read(ref _lastInjected) < (long)Quiet.TotalMilliseconds && Environment.TickCount64 < until)
            {
                await Task.Delay(Quiet / 5, cancellationToken);
            }

            Interlocked.Exchange(ref _closed, 1);
            while (Volatile.Read(ref _delivering) > 0)
            {
                await Task.Delay(5, cancellationToken);   // a batch taken before the close is routed to the sessions first
            }

            if (_sessions is not null && await _sessions.DrainAsync(DrainTimeout))
            {
                await TellDrainedAsync(cancellationToken);
            }
        }
        catch (OperationCanceledException)
        {
            // the host's shutdown timeout: the senders replay what this node did not hand on
        }
    }

    /// <summary>
    /// Tells every other node that this one has handed on all it took from them, so they drop what they kept to replay
    /// to it. Before they notice it gone (two refreshes after it left the directory); a node that does not answer, or
    /// of a release without this call, replays as before (duplicates, never a loss).
    /// </summary>
    private async Task TellDrainedAsync(CancellationToken cancellationToken)
    {
        var peers = Peers();

        await Task.WhenAll(peers.Select(async peer =>
        {
            try
            {
                await peer.Reference.Drained(NodeId).WaitAsync(DrainedTimeout, cancellationToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                LogDrainedNotTold(_logger, ex, peer.NodeId);
            }
        }));
    }

    /// <summary>
    /// Another node stopped and handed on everything this node forwarded to it: the messages kept to replay to it are
    /// not needed (what fails from now on is still kept and replayed).
    /// </summary>
    public Task PeerDrained(string nodeId)
    {
        if (RemoteNodeOf(nodeId) is { } node)
        {
            var forgotten = node.Forwarder.ForgetSent();   // dropped whether or not the line is logged
            LogPeerDrained(_logger, nodeId, forgotten);
        }

        return Task.CompletedTask;
    }

    public void Dispose()
    {
        _stopping.Dispose();
        _remoteLock.Dispose();
    }

    private async Task RefreshLoopAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(_options.RefreshInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try
                {
                    await RefreshAsync();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogRefreshFailed(_logger, ex);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }
    }

    /// <summary>Renews this node's lease, meets new nodes (exchanging snapshots) and drops nodes that are gone.</summary>
    private async Task RefreshAsync()
    {
        _accepting |= _mqtt.IsStarted;
        long version;
        lock (_localLock)
        {
            version = _version;
        }

        var view = await Directory.Join(Self, version, Lease);
        var liveIds = view.Live.Select(n => n.Entry.NodeId).ToHashSet(StringComparer.Ordinal);
        var met = new List<RouteNodeEntry>();
        var behind = new List<RouteNodeEntry>();
        var gone = new List<(RemoteNode Node, List<string> Filters)>();
        _remoteLock.EnterWriteLock();
        try
        {
            foreach (var live in view.Live.Where(n => n.Entry.NodeId != NodeId))
            {
                if (!_remoteNodes.TryGetValue(live.Entry.NodeId, out var known))
                {
                    AddRemote(live.Entry);
                    met.Add(live.Entry);
                }
                else if (known.Version < live.RouteVersion && known.BehindSince++ > 0)
                {
                    // Behind the version it reported for two refreshes in a row: a route change (or the snapshot
                    // that would have repaired it) was lost. Re-read instead of waiting for its next change.
                    behind.Add(live.Entry);
                }
                else if (known.Version >= live.RouteVersion)
                {
                    known.BehindSince = 0;
                }
            }

            foreach (var (id, node) in _remoteNodes)
            {
                // Two refreshes in a row without the node: it stopped renewing its lease (or the directory moved
                // and it has not re-joined yet, hence two).
                node.MissedRefreshes = liveIds.Contains(id) ? 0 : node.MissedRefreshes + 1;
                if (node.MissedRefreshes >= 2)
                {
                    gone.Add((node, [.. _remoteRoutes.FiltersOf(id)]));
                }
            }

            foreach (var (node, filters) in gone)
            {
                // What matches its routes from now until its sessions are adopted goes to its persistent sessions
                // (DeadNodeReplay), starting in the same step its routes leave the table: no publish falls between.
                _remoteNodes.Remove(node.Entry.NodeId);
                _remoteRoutes.RemoveOwner(node.Entry.NodeId);
                _shared.RemoveNode(node.Entry.NodeId);
                _deadNodes.Begin(node.Entry.NodeId, filters, _stopping.Token);
            }
        }
        finally
        {
            _remoteLock.ExitWriteLock();
        }

        foreach (var (node, _) in gone)
        {
            // What it may not have delivered (and what a publish that matched its routes just before they went hands its
            // forwarder late) is replayed to its persistent sessions too: acknowledged here, so never lost with it.
            LogNodeGone(_logger, node.Entry.NodeId);
            var nodeId = node.Entry.NodeId;
            _deadNodes.Add(nodeId, await node.Forwarder.StopAsync(late => _deadNodes.Add(nodeId, [late])));
        }

        _deadNodes.Observe(liveIds, view.Orphans.ToHashSet(StringComparer.Ordinal));
        if (gone.Count > 0)
        {
            _sessions?.OnNodesGone();
        }

        // A node we just met gets our snapshot (so it can forward to our subscribers now, not at its next refresh)
        // and we ask for its own.
        await Task.WhenAll(met.Select(async entry =>
        {
            LogNodeMet(_logger, entry.NodeId);
            try
            {
                await entry.Reference.ApplyRoutes(LocalSnapshot()).WaitAsync(_options.BroadcastTimeout);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogBroadcastFailed(_logger, ex, entry.NodeId);
            }

            await FetchSnapshotAsync(entry);
            await FetchRetainedAsync(entry);
        }));

        foreach (var entry in behind)
        {
            LogNodeBehind(_logger, entry.NodeId);
            await FetchSnapshotAsync(entry);
        }

        // Adopting publishes the gone node's due wills, so not before this node's MQTT server runs: a node restarted
        // after a crash met its previous incarnation's sessions in its first refresh, at start, and dropped their wills.
        if (_accepting)
        {
            _sessions?.OnOrphans(view.Orphans);
        }
    }

    /// <summary>
    /// A node by id as <see cref="Resolve"/>, or else as the directory knows it: a node that started a moment ago is live
    /// before this one has met it.
    /// </summary>
    public async Task<IRouteNode?> ResolveAsync(string nodeId)
    {
        if (Resolve(nodeId) is { } known)
        {
            return known;
        }

        try
        {
            return (await Directory.Find(nodeId).WaitAsync(_options.BroadcastTimeout))?.Reference;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogDirectoryUnreachable(_logger, ex, nodeId);
            return null;
        }
    }

    /// <summary>A node by id: this one, a known live one, or null when it is not (or no longer) known.</summary>
    public IRouteNode? Resolve(string nodeId)
    {
        if (nodeId == NodeId)
        {
            return _endpoint;
        }

        return RemoteNodeOf(nodeId)?.Entry.Reference;
    }

    /// <summary>The other live nodes this node knows, as they are now.</summary>
    private RouteNodeEntry[] Peers()
    {
        _remoteLock.EnterReadLock();
        try
        {
            return [.. _remoteNodes.Values.Select(n => n.Entry)];
        }
        finally
        {
            _remoteLock.ExitReadLock();
        }
    }

    /// <summary>A live node this node knows, by id; null when it is not (or no longer) known.</summary>
    private RemoteNode? RemoteNodeOf(string nodeId)
    {
        _remoteLock.EnterReadLock();
        try
        {
            return _remoteNodes.TryGetValue(nodeId, out var node) ? node : null;
        }
        finally
        {
            _remoteLock.ExitReadLock();
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // This node's subscriptions (called from the MQTTnet event handlers)
    // ---------------------------------------------------------------------------------------------------------

    /// <summary>A local client subscribed; completes when every other node knows (or the broadcast timed out).</summary>
    public Task SubscribedAsync(string clientId, string filter, int qos)
    {
        RouteUpdate? update = null;
        var shared = TopicFilter.IsShared(filter);
        var joined = false;
        lock (_localLock)
        {
            if (!_clientFilters.TryGetValue(clientId, out var filters))
            {
                filters = new HashSet<string>(StringComparer.Ordinal);
                _clientFilters[clientId] = filters;
            }

            if (shared)
            {
                if (!_sharedMembers.TryGetValue(filter, out var members))
                {
                    members = new Dictionary<string, int>(StringComparer.Ordinal);
                    _sharedMembers[filter] = members;
                }

                joined = members.TryAdd(clientId, qos);
                members[clientId] = qos;
            }

            if (filters.Add(filter) && Increment(filter))
            {
                update = new RouteUpdate(Self, ++_version, Snapshot: false, [filter], [], SharedCounts([filter]));
            }
            else if (joined)
            {
                // Another member of a group this node already has: the other nodes weigh their picks by members.
                update = new RouteUpdate(Self, ++_version, Snapshot: false, [], [], SharedCounts([filter]));
            }
        }

        if (shared && update is not null)
        {
            UpdateOwnShared(update);
        }

        return update is null ? Task.CompletedTask : BroadcastAsync(update);
    }

    /// <summary>A local client unsubscribed from one filter.</summary>
    public Task UnsubscribedAsync(string clientId, string filter)
    {
        RouteUpdate? update = null;
        lock (_localLock)
        {
            if (_clientFilters.TryGetValue(clientId, out var filters) && filters.Remove(filter))
            {
                if (filters.Count == 0)
                {
                    _clientFilters.Remove(clientId);
                }

                RemoveSharedMember(filter, clientId);
                if (Decrement(filter))
                {
                    update = new RouteUpdate(Self, ++_version, Snapshot: false, [], [filter]);
                }
                else if (TopicFilter.IsShared(filter))
                {
                    update = new RouteUpdate(Self, ++_version, Snapshot: false, [], [], SharedCounts([filter]));
                }
            }
        }

        if (update is not null)
        {
            UpdateOwnShared(update);
        }

        return update is null ? Task.CompletedTask : BroadcastAsync(update);
    }

    /// <summary>A local client's session ended (or was replaced by a clean one): all its subscriptions are gone.</summary>
    public Task SessionEndedAsync(string clientId)
    {
        RouteUpdate? update = null;
        lock (_localLock)
        {
            if (_clientFilters.Remove(clientId, out var filters))
            {
                foreach (var filter in filters)
                {
                    RemoveSharedMember(filter, clientId);
                }

                var removed = filters.Where(Decrement).ToList();
                var counts = SharedCounts(filters.Except(removed));
                if (removed.Count > 0 || counts is not null)
                {
                    update = new RouteUpdate(Self, ++_version, Snapshot: false, [], removed, counts);
                }
            }
        }

        if (update is not null)
        {
            UpdateOwnShared(update);
        }

        return update is null ? Task.CompletedTask : BroadcastAsync(update);
    }

    private void RemoveSharedMember(string filter, string clientId)
    {
        if (_sharedMembers.TryGetValue(filter, out var members) && members.Remove(clientId) && members.Count == 0)
        {
            _sharedMembers.Remove(filter);
        }
    }

    /// <summary>This node's member counts of the given shared subscriptions (null when none is shared). Under the local lock.</summary>
    private Dictionary<string, int>? SharedCounts(IEnumerable<string> filters)
    {
        Dictionary<string, int>? counts = null;
        foreach (var filter in filters)
        {
            if (_sharedMembers.TryGetValue(filter, out var members))
            {
                (counts ??= new Dictionary<string, int>(StringComparer.Ordinal))[filter] = members.Count;
            }
        }

        return counts;
    }

    /// <summary>This node's shared subscriptions are in the shared route table too (it picks among all nodes).</summary>
    private void UpdateOwnShared(RouteUpdate update)
    {
        _remoteLock.EnterWriteLock();
        try
        {
            ApplyShared(update, NodeId);
        }
        finally
        {
            _remoteLock.ExitWriteLock();
        }
    }

    /// <summary>The shared-subscription part of a (non-snapshot) change of a node's routes. Under the route lock.</summary>
    private void ApplyShared(RouteUpdate update, string nodeId)
    {
        foreach (var filter in update.Added.Where(TopicFilter.IsShared))
        {
            _shared.Set(filter, nodeId, Members(update, filter));
        }

        foreach (var filter in update.Removed.Where(TopicFilter.IsShared))
        {
            _shared.Remove(filter, nodeId);
        }

        foreach (var (filter, members) in update.SharedMembers ?? new Dictionary<string, int>())
        {
            _shared.UpdateMembers(filter, nodeId, members);
        }
    }

    private static int Members(RouteUpdate update, string shareFilter) =>
        update.SharedMembers is { } counts && counts.TryGetValue(shareFilter, out var members) ? members : 1;

    /// <summary>Whether a message on this topic would be forwarded to some other node.</summary>
    public bool RoutesToAnotherNode(string topic)
    {
        var matches = new HashSet<string>(StringComparer.Ordinal);
        _remoteLock.EnterReadLock();
        try
        {
            _remoteRoutes.Match(topic, matches);
        }
        finally
        {
            _remoteLock.ExitReadLock();
        }

        return matches.Count > 0;
    }

    private bool Increment(string filter)
    {
        _localFilters[filter] = _localFilters.GetValueOrDefault(filter) + 1;
        return _localFilters[filter] == 1;
    }

    private bool Decrement(string filter)
    {
        if (!_localFilters.TryGetValue(filter, out var count))
        {
            return false;
        }

        if (count > 1)
        {
            _localFilters[filter] = count - 1;
            return false;
        }

        _localFilters.Remove(filter);
        return true;
    }

    private RouteUpdate LocalSnapshot()
    {
        lock (_localLock)
        {
            return new RouteUpdate(Self, _version, Snapshot: true, [.. _localFilters.Keys], [], SharedCounts(_sharedMembers.Keys));
        }
    }

    // A route change that did not reach a node is sent again as a whole snapshot, at once in the background: waiting
    // for the target to notice the version gap took two refreshes (10 s and more), and every message published for
    // the new subscriber meanwhile was acknowledged and not forwarded. A node that is gone is dropped by the refresh.
    private Task BroadcastAsync(RouteUpdate update) => SendToAllAsync(node => node.ApplyRoutes(update), RepairRoutesAsync);

    private async Task RepairRoutesAsync(RouteNodeEntry target)
    {
        for (var attempt = 1; attempt <= 3 && !_stopping.IsCancellationRequested; attempt++)
        {
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(100 * attempt), _time, _stopping.Token);
                await target.Reference.ApplyRoutes(LocalSnapshot()).WaitAsync(_options.BroadcastTimeout, _stopping.Token);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogBroadcastFailed(_logger, ex, target.NodeId);
            }
        }
    }

    /// <summary>Calls every other node at once; completes when all answered or timed out (failures are logged, and handed to <paramref name="failed"/>).</summary>
    private async Task SendToAllAsync(Func<IRouteNode, Task> call, Func<RouteNodeEntry, Task>? failed = null)
    {
        var targets = Peers();

        await Task.WhenAll(targets.Select(async target =>
        {
            try
            {
                await call(target.Reference).WaitAsync(_options.BroadcastTimeout);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogBroadcastFailed(_logger, ex, target.NodeId);
                if (failed is not null)
                {
                    _ = failed(target);
                }
            }
        }));
    }

    // ---------------------------------------------------------------------------------------------------------
    // Publishing to other nodes
    // ---------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Forwards a message published on this node to every other node with a matching subscription, and queues it for
    /// the persistent sessions offline here. <paramref name="payload"/> is the message's payload, copied out of
    /// MQTTnet's buffer (it is kept).
    /// <para>
    /// Called before the message goes to this node's live subscribers, never after. A resuming session's subscriptions
    /// go live before it stops being matched offline, so a message that looks at the offline sessions first and the
    /// live ones second finds it in one or the other (or both: at least once). The other order lost a message now and
    /// then: it found no live subscription, the session resumed and stopped being offline, and then it found no
    /// offline one (<c>PersistentSessionTests.ResumingWhileMessagesFlow_LosesNone</c> under load).
    /// </para>
    /// </summary>
    public void Forward(MqttApplicationMessage message, string senderClientId, byte[] payload, List<Outbox>? congested = null)
    {
        ForwardedMessage? forwarded = null;
        _sessions?.MatchOffline(message.Topic, message.Retain,
            () => forwarded ??= ForwardedMessages.From(message, senderClientId, payload), fromAnotherNode: false);

        var matches = t_matches ??= new HashSet<string>(StringComparer.Ordinal);
        matches.Clear();
        NodeForwarder[]? forwarders = null;
        List<(string ShareFilter, string NodeId)>? picks = null;
        List<(string ShareFilter, NodeForwarder? Forwarder)>? sharedTargets = null;
        _remoteLock.EnterReadLock();
        try
        {
            if (_remoteRoutes.FilterCount > 0)
            {
                _remoteRoutes.Match(message.Topic, matches);
                if (matches.Count > 0)
                {
                    forwarders = [.. matches.Select(id => _remoteNodes[id].Forwarder)];
                }
            }

            if (_shared.Count > 0)
            {
                picks = [];
                _shared.Pick(message.Topic, picks);
                sharedTargets = [.. picks.Select(p => (p.ShareFilter, p.NodeId == NodeId ? null : _remoteNodes.GetValueOrDefault(p.NodeId)?.Forwarder))];
            }
        }
        finally
        {
            _remoteLock.ExitReadLock();
        }

        if (_deadNodes.Any)
        {
            _deadNodes.Match(message.Topic, (int)message.QualityOfServiceLevel, () => forwarded ??= ForwardedMessages.From(message, senderClientId, payload));
        }

        if (forwarders is not null)
        {
            forwarded ??= ForwardedMessages.From(message, senderClientId, payload);
            foreach (var forwarder in forwarders)
            {
                forwarder.Enqueue(forwarded);
            }
        }

        if (sharedTargets is { Count: > 0 })
        {
            forwarded ??= ForwardedMessages.From(message, senderClientId, payload);
            foreach (var (shareFilter, forwarder) in sharedTargets)
            {
                if (forwarder is null)
                {
                    DeliverShared(shareFilter, forwarded, congested);
                }
                else
                {
                    forwarder.Enqueue(forwarded with { SharedTarget = shareFilter });
                }
            }
        }
    }

    /// <summary>
    /// Gives a message to one member of a shared subscription on this node: a connected one (picked at random) if
    /// there is one, else a persistent member that is offline here (queued); else it is dropped.
    /// </summary>
    private void DeliverShared(string shareFilter, ForwardedMessage message, List<Outbox>? congested)
    {
        (string ClientId, int Qos)[] members;
        lock (_localLock)
        {
            members = _sharedMembers.TryGetValue(shareFilter, out var m) ? [.. m.Select(kv => (kv.Key, kv.Value))] : [];
        }

        var start = members.Length > 1 ? Random.Shared.Next(members.Length) : 0;
        for (var i = 0; i < members.Length; i++)
        {
            var (clientId, qos) = members[(start + i) % members.Length];
            var packet = MQTTnet.Server.Internal.Formatter.MqttPublishPacketFactory.Create(ForwardedMessages.ToMqtt(message with { Qos = Math.Min(message.Qos, qos) }));
            if (_local.Send(clientId, packet, congested))
            {
                _metrics.PublishesOut.Add(1);
                return;
            }
        }

        if (_sessions?.DivertShared(members, message) != true)
        {
            _metrics.ForwardDropped.Add(1);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // What other nodes call (through RouteNodeEndpoint)
    // ---------------------------------------------------------------------------------------------------------

    public async Task DeliverAsync(ForwardedBatch batch)
    {
        if (!_accepting)
        {
            if (!_mqtt.IsStarted)
            {
                // Starting: refused, not swallowed (the sender keeps the batch and tries again). Once started, batches
                // are taken while the node stops too: its persistent sessions, offline here or moved on, take them.
                throw new InvalidOperationException($"node {NodeId} is not accepting messages yet (starting)");
            }

            _accepting = true;
        }

        Interlocked.Exchange(ref _lastInjected, Environment.TickCount64);

        var congested = new List<Outbox>();
        Interlocked.Increment(ref _delivering);
        try
        {
            if (Volatile.Read(ref _closed) != 0)
            {
                // Drained (DrainAsync): the sender keeps the batch and replays it to the sessions once this node is gone.
                throw new InvalidOperationException($"node {NodeId} is stopping and has drained: not accepting messages");
            }

            foreach (var m in batch.Messages)
            {
                if (m.SharedTarget is { } shareFilter)
                {
                    DeliverShared(shareFilter, m, congested);
                    continue;
                }

                // Delivered to this node's subscribers only, never forwarded again: no loops. SenderClientId keeps
                // MQTT 5 no-local working across nodes. Offline sessions first, as for a local publish (see Forward).
                _sessions?.MatchOffline(m.Topic, retain: false, () => m, fromAnotherNode: true);
                _local.Deliver(ForwardedMessages.ToMqtt(m), m.SenderClientId, congested);
            }
        }
        finally
        {
            Interlocked.Decrement(ref _delivering);
        }

        _metrics.Injected.Add(batch.Messages.Count);

        // Back-pressure across nodes: the forwarder waits for this answer before its next batch, so a subscriber here
        // that cannot keep up slows the forwarding node's queue, as it slows this node's own publishers.
        await Outbox.WaitForRoomAsync(congested, CancellationToken.None);
    }

    public Task ApplyRoutes(RouteUpdate update)
    {
        if (update.From.NodeId == NodeId)
        {
            return Task.CompletedTask;
        }

        var needsSnapshot = false;
        _remoteLock.EnterWriteLock();
        try
        {
            if (!_remoteNodes.TryGetValue(update.From.NodeId, out var node))
            {
                node = AddRemote(update.From);
            }

            node.MissedRefreshes = 0;
            if (update.Snapshot)
            {
                if (update.Version >= node.Version || !node.Synced)
                {
                    _remoteRoutes.RemoveOwner(node.Entry.NodeId);
                    _shared.RemoveNode(node.Entry.NodeId);
                    foreach (var filter in update.Added.Where(f => !TopicFilter.IsShared(f)))
                    {
                        _remoteRoutes.Add(filter, node.Entry.NodeId);
                    }

                    ApplyShared(update, node.Entry.NodeId);

                    node.Version = update.Version;
                    node.Synced = true;
                }
            }
            else if (!node.Synced || update.Version > node.Version + 1)
            {
                needsSnapshot = true;   // missed a change (or never synced): do not guess, re-read
            }
            else if (update.Version == node.Version + 1)
            {
                foreach (var filter in update.Added.Where(f => !TopicFilter.IsShared(f)))
                {
                    _remoteRoutes.Add(filter, node.Entry.NodeId);
                }

                foreach (var filter in update.Removed.Where(f => !TopicFilter.IsShared(f)))
                {
                    _remoteRoutes.Remove(filter, node.Entry.NodeId);
                }

                ApplyShared(update, node.Entry.NodeId);
                node.Version = update.Version;
            }
        }
        finally
        {
            _remoteLock.ExitWriteLock();
        }

        // A missed change is repaired before answering: the sender completes its SUBACK only after this node can
        // route to the new subscriber (answering first left a window where a message published right after the
        // SUBACK was not forwarded here).
        return needsSnapshot ? FetchSnapshotAsync(update.From) : Task.CompletedTask;
    }

    public Task<RouteUpdate> GetRoutes() => Task.FromResult(LocalSnapshot());

    /// <summary>
    /// Sends a retained change made on this node to every other node; completes when they have it (bounded). A node
    /// that missed it catches up when it next meets this one (a restarted node fetches everything).
    /// </summary>
    public Task BroadcastRetainedAsync(RetainedChange change) => SendToAllAsync(node => node.ApplyRetained(change));

    /// <summary>Sends an access change made on this node to every other node.</summary>
    public Task BroadcastAccessChangeAsync(Grains.Abstractions.Policies.AccessChange change) => SendToAllAsync(node => node.AccessChanged(change));

    /// <summary>Tells every other node that a rule changed (each reads the rule catalog again).</summary>
    public Task BroadcastRulesChangedAsync() => SendToAllAsync(node => node.RulesChanged());

    public async Task<bool> DisconnectClient(string clientId, string sessionId, string reason, DisconnectOptions options)
    {
        if (_connections.Find(clientId) is not { } meter || meter.SessionId != sessionId)
        {
            return false;
        }

        meter.ServerDisconnectReason = reason;
        meter.PreventWill = options.PreventWill;
        meter.EndSession = options.EndSession;
        var code = reason == Grains.Abstractions.Things.DisconnectReasons.DuplicateClientId
            ? MqttDisconnectReasonCode.SessionTakenOver
            : MqttDisconnectReasonCode.AdministrativeAction;
        try
        {
            await _mqtt.DisconnectClientAsync(clientId, new MqttServerClientDisconnectOptions { ReasonCode = code });
            return true;
        }
        catch (InvalidOperationException)
        {
            return false;   // it went away meanwhile
        }
    }

    /// <summary>Delivery to this node's connection of a client, if it is still the given session and has its outbox.</summary>
    public ConnectionDelivery? GetDelivery(string clientId, string sessionId) =>
        _connections.Find(clientId) is { Outbox: { } outbox } meter && meter.SessionId == sessionId
            ? new ConnectionDelivery(outbox.Queued, outbox.InFlight, outbox.Window, outbox.Dropped, outbox.Congested)
            : null;

    /// <summary>The client connected anew elsewhere (a takeover): its older connection here, if still up, is closed.</summary>
    public async Task CloseReplacedConnectionAsync(string clientId, string newSessionId)
    {
        if (_connections.Find(clientId) is { } connection && connection.SessionId != newSessionId)
        {
            await DisconnectClient(clientId, connection.SessionId, Grains.Abstractions.Things.DisconnectReasons.DuplicateClientId, new DisconnectOptions(PreventWill: false, EndSession: false));
        }
    }

    private RemoteNode AddRemote(RouteNodeEntry entry)
    {
        var node = new RemoteNode(entry, new NodeForwarder(NodeId, entry, _options, _time, _metrics, _logger));
        _remoteNodes[entry.NodeId] = node;
        return node;
    }

    private async Task FetchSnapshotAsync(RouteNodeEntry entry)
    {
        try
        {
            var snapshot = await entry.Reference.GetRoutes().WaitAsync(_options.BroadcastTimeout);
            await ApplyRoutes(snapshot);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogSnapshotFailed(_logger, ex, entry.NodeId);
        }
    }

    private async Task FetchRetainedAsync(RouteNodeEntry entry)
    {
        try
        {
            foreach (var change in await entry.Reference.GetRetained().WaitAsync(_options.BroadcastTimeout))
            {
                await _retained.ApplyAsync(change);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogSnapshotFailed(_logger, ex, entry.NodeId);
        }
    }

    private sealed class RemoteNode(RouteNodeEntry entry, NodeForwarder forwarder)
    {
        public RouteNodeEntry Entry { get; } = entry;
        public NodeForwarder Forwarder { get; } = forwarder;
        public long Version { get; set; } = -1;
        public bool Synced { get; set; }
        public int MissedRefreshes { get; set; }
        public int BehindSince { get; set; }
    }

    [LoggerMessage(EventId = 1021, Level = LogLevel.Information, Message = "Routing: met node {NodeId}")]
    private static partial void LogNodeMet(ILogger logger, string nodeId);

    [LoggerMessage(EventId = 1022, Level = LogLevel.Warning, Message = "Routing: missed a route change of node {NodeId}; reading its routes again")]
    private static partial void LogNodeBehind(ILogger logger, string nodeId);

    [LoggerMessage(EventId = 1075, Level = LogLevel.Information, Message = "Routing: handed this node's sessions to node {NodeId} before leaving (all adopted: {Adopted})")]
    private static partial void LogHandedOver(ILogger logger, string nodeId, bool adopted);

    [LoggerMessage(EventId = 1076, Level = LogLevel.Warning, Message = "Routing: could not hand this node's sessions to node {NodeId}; they are adopted as a gone node's")]
    private static partial void LogHandOverFailed(ILogger logger, Exception exception, string nodeId);

    [LoggerMessage(EventId = 1078, Level = LogLevel.Warning, Message = "Routing: could not ask the node directory for node {NodeId}")]
    private static partial void LogDirectoryUnreachable(ILogger logger, Exception exception, string nodeId);

    [LoggerMessage(EventId = 1023, Level = LogLevel.Information, Message = "Routing: node {NodeId} is gone; its routes are dropped")]
    private static partial void LogNodeGone(ILogger logger, string nodeId);

    [LoggerMessage(EventId = 1024, Level = LogLevel.Warning, Message = "Routing: could not send a route change to node {NodeId}")]
    private static partial void LogBroadcastFailed(ILogger logger, Exception exception, string nodeId);

    [LoggerMessage(EventId = 1025, Level = LogLevel.Warning, Message = "Routing: could not read the routes of node {NodeId}")]
    private static partial void LogSnapshotFailed(ILogger logger, Exception exception, string nodeId);

    [LoggerMessage(EventId = 1026, Level = LogLevel.Warning, Message = "Routing: could not renew this node's lease in the node directory")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 1086, Level = LogLevel.Information, Message = "Routing: node {NodeId} stopped and handed on what this node forwarded to it; {Count} messages kept to replay to it are dropped")]
    private static partial void LogPeerDrained(ILogger logger, string nodeId, int count);

    [LoggerMessage(EventId = 1087, Level = LogLevel.Information, Message = "Routing: could not tell node {NodeId} that this node has drained; it replays what it forwarded here (duplicates, not losses)")]
    private static partial void LogDrainedNotTold(ILogger logger, Exception exception, string nodeId);

    [LoggerMessage(EventId = 1027, Level = LogLevel.Warning, Message = "Routing: could not leave the node directory cleanly")]
    private static partial void LogLeaveFailed(ILogger logger, Exception exception);
}
