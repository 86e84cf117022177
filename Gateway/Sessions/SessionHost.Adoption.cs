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

/// <summary>Adopting the client ids of nodes that are gone: their lost connections, wills and persistent sessions.</summary>
internal sealed partial class SessionHost
{
    // ---------------------------------------------------------------------------------------------------------
    // Adopting the sessions of nodes that are gone
    // ---------------------------------------------------------------------------------------------------------

    /// <summary>Called by the router when the directory lists gone nodes whose sessions nobody adopted yet.</summary>
    public void OnOrphans(IReadOnlyList<string> orphans)
    {
        if (orphans.Count == 0 || !_adopting.Wait(0))
        {
            return;
        }

        _ = Task.Run(async () =>
        {
            try
            {
                foreach (var orphan in orphans.Where(o => o != NodeId))
                {
                    await AdoptNodeAsync(orphan);
                }
            }
            finally
            {
                _adopting.Release();
            }
        });
    }

    /// <summary>
    /// A stopping node hands this node its sessions (IRouteNode.AdoptNode): adopted now, as a dead node's are, once an
    /// adoption already running here has finished. True when all of them were taken and their filters announced.
    /// </summary>
    public async Task<bool> AdoptNowAsync(string stoppingNodeId)
    {
        if (stoppingNodeId == NodeId)
        {
            return false;
        }

        await _adopting.WaitAsync(_stopping);
        try
        {
            var adopted = await AdoptNodeAsync(stoppingNodeId, planned: true);
            if (adopted is { } count)
            {
                LogHandedOver(_logger, count, stoppingNodeId);
            }

            return adopted is not null;
        }
        finally
        {
            _adopting.Release();
        }
    }

    /// <summary>
    /// An adopted node's list of client ids stays in storage for <see cref="ListKeptAfterAdoption"/>: the other nodes
    /// replay what they had forwarded to it by that list once they notice it gone. Cleared at once, as it was, the list
    /// lived on only in the memory of its grains, and those whose activations were on a node that stopped took it with
    /// them. Cleared when the time is up, or when this node stops first.
    /// </summary>
    private void ClearListLater(string goneNodeId) => _ = Task.Run(async () =>
    {
        try
        {
            await Task.Delay(ListKeptAfterAdoption, _time, _stopping);
        }
        catch (OperationCanceledException)
        {
            // this node is stopping: clear it now rather than leave it behind
        }

        try
        {
            await HostList.ClearAsync(_grains, goneNodeId);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogListClearFailed(_logger, ex, goneNodeId);
        }
    });

    /// <summary>How long after a planned stop's hand-over the connection directory is cleared of the stopped node's entries.</summary>
    internal static readonly TimeSpan ConnectionsReleasedAfterHandOver = TimeSpan.FromSeconds(30);

    /// <summary>
    /// What the connection directory still lists for a node that stopped after handing over: connections whose end
    /// that node could not record. Recorded as lost, so their things do not look connected for ever.
    /// </summary>
    private void ReleaseLater(string goneNodeId) => _ = Task.Run(async () =>
    {
        try
        {
            await Task.Delay(ConnectionsReleasedAfterHandOver, _time, _stopping);
            var (lost, _) = await ReleaseConnectionsOfAsync(goneNodeId);
            foreach (var connection in lost.Values)
            {
                try
                {
                    await RecordLostAsync(connection.ClientId, connection.Connection);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogAdoptClientFailed(_logger, ex, connection.ClientId, goneNodeId);
                }
            }
        }
        catch (OperationCanceledException)
        {
            // this node is stopping too; what is left stays listed until its clients connect again
        }
    });

    /// <summary>
    /// Adopts a gone node's client ids; how many, or null when another node has claimed it or one failed. A node that
    /// hands over as it stops (<paramref name="planned"/>) has closed its connections, and their ends are recorded
    /// there: the connection directory is cleared of what it still lists for that node only later
    /// (<see cref="ReleaseLater"/>), so those ends are not recorded twice.
    /// </summary>
    private async Task<int?> AdoptNodeAsync(string goneNodeId, bool planned = false)
    {
        var directory = _grains.GetGrain<IRouteDirectoryGrain>(0);
        try
        {
            if (!await directory.Claim(goneNodeId, NodeId))
            {
                return null;
            }

            var (lost, failed) = planned ? ([], 0) : await ReleaseConnectionsOfAsync(goneNodeId);
            var hosted = await HostList.ReadAsync(_grains, goneNodeId);
            var parallel = new ParallelOptions { MaxDegreeOfParallelism = AdoptionConcurrency, CancellationToken = _stopping };
            await Parallel.ForEachAsync(hosted, parallel, async (entry, _) =>
            {
                try
                {
                    await AdoptClientAsync(goneNodeId, entry, lost.GetValueOrDefault(entry.ClientId));
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Interlocked.Increment(ref failed);
                    LogAdoptClientFailed(_logger, ex, entry.ClientId, goneNodeId);
                }
            });

            // The clean connections (no session grain, not in the list): their ends are recorded here, or nowhere.
            var listed = hosted.Select(h => h.ClientId).ToHashSet(StringComparer.Ordinal);
            await Parallel.ForEachAsync(lost.Values.Where(l => !listed.Contains(l.ClientId)), parallel, async (connection, _) =>
            {
                try
                {
                    await RecordLostAsync(connection.ClientId, connection.Connection);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    // Not retried (the directory has let it go): the thing's history misses this connection.
                    LogAdoptClientFailed(_logger, ex, connection.ClientId, goneNodeId);
                }
            });

            if (failed > 0)
            {
                return null;   // the claim runs out and the node is adopted again (adopting is repeatable)
            }

            await directory.Adopted(goneNodeId, NodeId);
            ClearListLater(goneNodeId);
            if (planned)
            {
                ReleaseLater(goneNodeId);
            }

            LogAdopted(_logger, goneNodeId, hosted.Count);
            return hosted.Count;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogAdoptFailed(_logger, ex, goneNodeId);
            return null;
        }
    }

    /// <summary>
    /// Takes a gone node's connections out of every connection directory partition: by client id, the ones the
    /// directory still had as current, and how many partitions could not be asked (the adoption is then tried again).
    /// </summary>
    private async Task<(Dictionary<string, LiveClient> Lost, int Failed)> ReleaseConnectionsOfAsync(string goneNodeId)
    {
        var lost = new Dictionary<string, LiveClient>(StringComparer.Ordinal);
        var failed = 0;
        await Parallel.ForEachAsync(Enumerable.Range(0, ConnectionDirectory.Partitions), new ParallelOptions { MaxDegreeOfParallelism = 8, CancellationToken = _stopping }, async (partition, _) =>
        {
            try
            {
                var released = await _grains.Reference<IConnectionDirectoryGrain>(partition).ReleaseNode(goneNodeId);
                lock (lost)
                {
                    foreach (var connection in released)
                    {
                        lost[connection.ClientId] = connection;
                    }
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Interlocked.Increment(ref failed);
                LogReleaseNodeFailed(_logger, ex, partition, goneNodeId);
            }
        });
        return (lost, failed);
    }

    /// <summary>
    /// A connection that died with its node, as AWS records a lost connection: its end on its thing (with its start,
    /// when the connection directory still had it), and its disconnected event when <paramref name="publish"/>. The end
    /// goes to its keeper (<see cref="EndKeeper"/>), as a stopping node's ends do: an adoption of thousands of
    /// connections does not wait for thousands of thing activations while the fleet reconnects.
    /// </summary>
    private async Task RecordLostAsync(string clientId, ClientConnection? connection, string? sessionId = null, int protocolVersion = 0, bool publish = true)
    {
        sessionId ??= connection!.SessionId;
        var opened = connection is { } c && c.SessionId == sessionId
            ? new ConnectionOpened(c.SessionId, clientId, c.RemoteAddress, c.NodeName, c.ProtocolVersion, c.Since, c.VersionNumber)
            : null;
        await _ends.KeepAsync(clientId, new ConnectionClosed(sessionId, DisconnectReasons.ConnectionLost, false, _time.GetUtcNow(), UsageDelta.None, opened));
        if (publish)
        {
            var version = opened?.VersionNumber ?? 0;
            await _lifecycle.DisconnectedAsync(
                new LiveConnection(clientId, sessionId, opened?.ProtocolVersion ?? protocolVersion, null) { VersionNumber = version },
                null, clientInitiated: false, DisconnectReasons.ConnectionLost);
        }
    }

    private async Task AdoptClientAsync(string goneNodeId, HostedSession entry, LiveClient? lost)
    {
        var clientId = entry.ClientId;
        var adopted = await _grains.Reference<IClientSessionGrain>(clientId).Adopt(goneNodeId, NodeId);
        if (entry.Online)
        {
            // Its connection died with the node: record it as AWS does for a lost connection. Repeated when an
            // adoption is retried; a thing whose client reconnected meanwhile has another session id and ignores it.
            await _grains.ConnectionDirectoryOf(clientId).Release([new ReleasedConnection(clientId, entry.SessionId, DisconnectReasons.ConnectionLost, _time.GetUtcNow())]);
            // Its start from the directory, or from the list when the partition that had it went with the node's silo.
            var connection = lost?.Connection ?? (entry.ConnectedAt is { } since
                ? new ClientConnection(entry.SessionId, goneNodeId, since, null, entry.ProtocolVersion, entry.VersionNumber)
                : null);
            await RecordLostAsync(clientId, connection, entry.SessionId, entry.ProtocolVersion, publish: adopted is null || adopted.LostConnection is not null);
        }

        if (adopted is null)
        {
            return;
        }

        _metrics.SessionsAdopted.Add(1);
        if (adopted.Persistent || adopted.PendingWill is not null)
        {
            // Stored by a node of an earlier release, perhaps, which did not mark it: a clean connect must end it.
            await _grains.ConnectionDirectoryOf(clientId).Mark([clientId]);
        }

        // A session this node still remembers as moved away (it lived here a moment ago and went to the node that is
        // handing it back now: a rolling restart moves devices back and forth) is hosted anew; keeping the stale entry
        // left its filters unannounced and its messages unmatched until the client came back.
        var stale = _clients.TryGetValue(clientId, out var before) && before is { MovedAt: not null, Online: false } ? before : null;
        if (adopted.Persistent && (stale is not null || before is null))
        {
            if (stale is not null)
            {
                RemoveOffline(stale);   // what it still sends follows the session through its grain, as before
            }

            var client = new HostedClient(clientId, adopted.WillSessionId ?? entry.SessionId, entry.ProtocolVersion, adopted.ExpirySeconds) { Online = true };
            client.SetSubscriptions(adopted.Subscriptions);
            _clients[clientId] = client;
            foreach (var s in adopted.Subscriptions)
            {
                await _router.SubscribedAsync(clientId, s.Filter, s.Qos);
            }

            client.Online = false;
            client.OfflineSince = _time.GetUtcNow();
            AddOffline(client);
            ChangeList(clientId, new HostedSession(clientId, client.SessionId, Online: false, entry.ProtocolVersion));
        }
        else if (adopted.PendingWill is not null)
        {
            ChangeList(clientId, new HostedSession(clientId, entry.SessionId, Online: false, entry.ProtocolVersion));
        }

        if (adopted is { PendingWill: not null, WillSessionId: { } willSession })
        {
            if (adopted.WillDueIn <= TimeSpan.Zero)
            {
                if (await _grains.Reference<IClientSessionGrain>(clientId).ClaimWill(willSession) is { } will)
                {
                    await _wills.PublishAsync(clientId, will);
                }

                if (!adopted.Persistent)
                {
                    ChangeList(clientId, null);
                }
            }
            else
            {
                ScheduleWill(clientId, willSession, adopted.WillDueIn, unlistAfter: !adopted.Persistent);
            }
        }
    }
}
