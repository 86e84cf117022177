using Microsoft.Extensions.Logging;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// What this node had sent, or was sending, to a node that died, replayed to the persistent sessions that node hosted,
/// so that no QoS 1/2 message this node acknowledged to its publisher is lost with it:
/// <list type="bullet">
/// <item>the messages its forwarder still held (failed batches are kept, never dropped, until the node is declared
/// gone) and those it sent in the last <see cref="RoutingOptions.ReplayWindow"/> (the dead node may have had them
/// queued or in flight, unacknowledged by the subscriber);</item>
/// <item>the messages published here after the death that match the dead node's routes, until the node that adopts
/// its sessions announces their subscriptions (then they route there as usual).</item>
/// </list>
/// They go through each session's grain (<see cref="IClientSessionGrain.Replay"/>), which keeps those its subscriptions
/// take: queued while the client is away, or handed to the node it has reconnected to. At least once: what the dead node
/// had already delivered comes again. The dead node's client ids are read from its host list (kept readable for a while
/// after adoption for this).
/// </summary>
internal sealed partial class DeadNodeReplay(IGrainFactory grains, Func<string, Task<IRouteNode?>> resolve, TimeProvider time, GatewayMetrics metrics, ILogger logger)
{
    private const int MaxMessagesPerCall = 256;
    private const int Concurrency = 32;
    private static readonly TimeSpan FlushEvery = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan GiveUpAfter = TimeSpan.FromMinutes(10);

    private readonly Lock _lock = new();
    private readonly Dictionary<string, DeadNode> _dead = new(StringComparer.Ordinal);
    private volatile int _count;

    /// <summary>Whether any dead node's routes are still matched (a cheap check on the publish path).</summary>
    public bool Any => _count > 0;

    /// <summary>
    /// The node is gone: match its routes until its sessions are adopted. Called in the same step that removes its
    /// routes from the router, so no publish falls between the two; what was on its way to it follows (<see cref="Add"/>).
    /// </summary>
    public void Begin(string nodeId, IEnumerable<string> filters, CancellationToken stopping)
    {
        var dead = new DeadNode(nodeId, time.GetUtcNow());
        foreach (var filter in filters)
        {
            dead.Routes.Add(filter, nodeId);
        }

        lock (_lock)
        {
            _dead[nodeId] = dead;
            _count = _dead.Count;
        }

        LogBegin(logger, nodeId, dead.Routes.FilterCount);
        _ = Task.Run(() => RunAsync(dead, stopping), CancellationToken.None);
    }

    /// <summary>Messages that were on their way to the gone node (its forwarder's): replayed with the rest.</summary>
    public void Add(string nodeId, IReadOnlyList<ForwardedMessage> undelivered)
    {
        lock (_lock)
        {
            if (_dead.TryGetValue(nodeId, out var dead))
            {
                dead.Pending.AddRange(undelivered);
                return;
            }
        }

        if (undelivered.Count > 0)
        {
            // Its sessions were adopted already (a late straggler): counted and logged, the one way these are lost.
            metrics.ForwardDropped.Add(undelivered.Count);
            LogTooLate(logger, undelivered.Count, nodeId);
        }
    }

    /// <summary>A QoS 1/2 message routed here: kept for every dead node whose routes it matches.</summary>
    public void Match(string topic, int qos, Func<ForwardedMessage> message)
    {
        if (qos == 0)
        {
            return;   // at most once: not replayed
        }

        var owners = new HashSet<string>(StringComparer.Ordinal);
        lock (_lock)
        {
            foreach (var dead in _dead.Values)
            {
                owners.Clear();
                dead.Routes.Match(topic, owners);
                if (owners.Count > 0)
                {
                    dead.Pending.Add(message());
                }
            }
        }
    }

    /// <summary>
    /// The directory's view: a dead node that is no longer waiting for adoption (adopted, or back) for two refreshes
    /// has its sessions' routes announced by their new host, so its own are no longer matched here.
    /// </summary>
    public void Observe(IReadOnlySet<string> live, IReadOnlySet<string> orphans)
    {
        lock (_lock)
        {
            foreach (var dead in _dead.Values)
            {
                dead.Settled = live.Contains(dead.NodeId) || !orphans.Contains(dead.NodeId) ? dead.Settled + 1 : 0;
            }
        }
    }

    private async Task RunAsync(DeadNode dead, CancellationToken stopping)
    {
        try
        {
            // Its host list may have lived on the dead silo: readable once Orleans has declared it dead.
            var clients = await HostedAsync(dead.NodeId, stopping);
            while (!stopping.IsCancellationRequested)
            {
                await Task.Delay(FlushEvery, time, stopping);
                bool last;
                List<ForwardedMessage> batch;
                lock (_lock)
                {
                    last = dead.Settled >= 2 || time.GetUtcNow() - dead.Since > GiveUpAfter;
                    if (last)
                    {
                        _dead.Remove(dead.NodeId);
                        _count = _dead.Count;
                    }

                    batch = [.. dead.Pending];
                    dead.Pending.Clear();
                }

                if (batch.Count > 0)
                {
                    await ReplayAsync(dead.NodeId, clients, batch, stopping);
                }

                if (last)
                {
                    LogDone(logger, dead.NodeId);
                    return;
                }
            }
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // this node is stopping: what it held dies with it (the publishers' next node does not have it either)
        }
    }

    private async Task<IReadOnlyList<HostedSession>> HostedAsync(string nodeId, CancellationToken stopping)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await Sessions.HostList.ReadAsync(grains, nodeId);
            }
            catch (Exception ex) when (ex is not OperationCanceledException && attempt < 60)
            {
                LogListUnreadable(logger, ex, nodeId, attempt);
                await Task.Delay(TimeSpan.FromSeconds(1), time, stopping);
            }
        }
    }

    private async Task ReplayAsync(string deadNodeId, IReadOnlyList<HostedSession> clients, List<ForwardedMessage> messages, CancellationToken stopping)
    {
        var chunks = messages.Chunk(MaxMessagesPerCall).ToList();
        await Parallel.ForEachAsync(clients, new ParallelOptions { MaxDegreeOfParallelism = Concurrency, CancellationToken = stopping }, async (client, ct) =>
        {
            foreach (var chunk in chunks)
            {
                await ReplayToAsync(deadNodeId, client.ClientId, chunk, ct);
            }
        });
        metrics.Replayed.Add(messages.Count);
    }

    private async Task ReplayToAsync(string deadNodeId, string clientId, ForwardedMessage[] chunk, CancellationToken stopping)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                var result = await grains.Reference<IClientSessionGrain>(clientId).Replay(deadNodeId, chunk);
                if (result.OnlineNodeId is { } online && result.ForOnline.Count > 0)
                {
                    if (await resolve(online) is not { } node)
                    {
                        throw new InvalidOperationException($"the node {online} the client is connected to is not known here");
                    }

                    await node.DeliverToClient(clientId, result.ForOnline);
                }

                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                if (attempt >= 5)
                {
                    // Counted and logged: the one way a replayed message is lost (the session's grain or the node its
                    // client reconnected to did not answer five times).
                    metrics.ForwardDropped.Add(chunk.Length);
                    LogReplayFailed(logger, ex, chunk.Length, clientId, deadNodeId);
                    return;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), time, stopping);
            }
        }
    }

    private sealed class DeadNode(string nodeId, DateTimeOffset since)
    {
        public string NodeId { get; } = nodeId;
        public DateTimeOffset Since { get; } = since;
        public TopicTree<string> Routes { get; } = new();
        public List<ForwardedMessage> Pending { get; } = [];
        public int Settled { get; set; }
    }

    [LoggerMessage(EventId = 1028, Level = LogLevel.Warning, Message = "Node {NodeId} is gone: replaying what it may not have delivered to its persistent sessions, and matching its {Filters} filters until they are adopted")]
    private static partial void LogBegin(ILogger logger, string nodeId, int filters);

    [LoggerMessage(EventId = 1029, Level = LogLevel.Warning, Message = "Dropped {Count} messages for gone node {NodeId}: they reached its forwarder after its sessions were adopted")]
    private static partial void LogTooLate(ILogger logger, int count, string nodeId);

    [LoggerMessage(EventId = 1030, Level = LogLevel.Information, Message = "Replay for gone node {NodeId} finished: its sessions are adopted")]
    private static partial void LogDone(ILogger logger, string nodeId);

    [LoggerMessage(EventId = 1031, Level = LogLevel.Warning, Message = "The host list of gone node {NodeId} cannot be read yet (attempt {Attempt}); its messages wait")]
    private static partial void LogListUnreadable(ILogger logger, Exception exception, string nodeId, int attempt);

    [LoggerMessage(EventId = 1032, Level = LogLevel.Error, Message = "Lost {Count} messages for {ClientId} replayed from gone node {NodeId}: its session could not take them")]
    private static partial void LogReplayFailed(ILogger logger, Exception exception, int count, string clientId, string nodeId);
}
