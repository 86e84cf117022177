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

/// <summary>The persistent sessions offline here: their filters matched against every routed message, what matches queued in their grains.</summary>
internal sealed partial class SessionHost
{
    // ---------------------------------------------------------------------------------------------------------
    // Matching messages for offline sessions, queueing them in the session grains
    // ---------------------------------------------------------------------------------------------------------

    /// <summary>
    /// Queues a message routed through this node for every offline session here that it matches. A session that moved
    /// away takes only what another node forwarded here: that node may have routed it by the session's old home alone.
    /// One published here went to the new home directly (that node announced its filters before it took the session).
    /// </summary>
    public void MatchOffline(string topic, bool retain, Func<ForwardedMessage> message, bool fromAnotherNode)
    {
        if (_offlineFilters == 0)
        {
            return;
        }

        var owners = new HashSet<string>(StringComparer.Ordinal);
        _offlineLock.EnterReadLock();
        try
        {
            _offline.Match(topic, owners);
        }
        finally
        {
            _offlineLock.ExitReadLock();
        }

        ForwardedMessage? forwarded = null;
        foreach (var clientId in owners)
        {
            if (_clients.TryGetValue(clientId, out var client) && !client.Online && (fromAnotherNode || client.MovedAt is null)
                && SessionMatch.Shape(clientId, client.Subscriptions, forwarded ??= message(), retain) is { } queued)
            {
                Divert(client, queued);
            }
        }
    }

    /// <summary>
    /// A shared subscription's message with no connected member here: queued for one persistent member offline
    /// here (the group's QoS 1/2 messages wait for it, as AWS); false when there is none.
    /// </summary>
    public bool DivertShared(IReadOnlyList<(string ClientId, int Qos)> members, ForwardedMessage message)
    {
        foreach (var (clientId, qos) in members)
        {
            var granted = Math.Min(message.Qos, qos);
            if (granted >= 1 && _clients.TryGetValue(clientId, out var client) && !client.Online && client.MovedAt is null)
            {
                Divert(client, new QueuedMessage(message with { Qos = granted, SharedTarget = null }, false, null, 0, default));
                return true;
            }
        }

        return false;
    }

    private void Divert(HostedClient client, QueuedMessage message)
    {
        bool start;
        lock (client.Outbox)
        {
            client.Outbox.Add(message);
            // The session's bound is kept (and its drops counted for the client) by the grain; this only caps
            // what waits here while the grain is slow or unreachable.
            if (client.Outbox.Count > (2 * _options.MaxQueuedMessages) + MaxBatch)
            {
                client.Outbox.RemoveAt(0);
                _metrics.SessionMessagesDropped.Add(1);
                if (_stopping.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _droppedWhileStopping);
                }
            }

            start = !client.Sending;
            client.Sending = true;
            if (start)
            {
                Interlocked.Increment(ref _senders);
            }
        }

        if (start)
        {
            _ = SendOutboxAsync(client);
        }
    }

    /// <summary>One call in flight per session, so its queue keeps the order messages were routed here.</summary>
    private async Task SendOutboxAsync(HostedClient client)
    {
        var failures = 0;
        while (true)
        {
            List<QueuedMessage> batch;
            bool moved;
            lock (client.Outbox)
            {
                if (client.Outbox.Count == 0)
                {
                    client.Sending = false;
                    Interlocked.Decrement(ref _senders);
                    return;
                }

                batch = client.Outbox.GetRange(0, Math.Min(MaxBatch, client.Outbox.Count));
                moved = client.MovedAt is not null;
            }

            try
            {
                await SendBatchAsync(client, batch, moved);
                lock (client.Outbox)
                {
                    client.Outbox.RemoveRange(0, batch.Count);
                }

                failures = 0;
            }
            catch (Exception ex) when (ex is not OperationCanceledException && !_drained)
            {
                // The grain is unreachable (its silo may be dying, or this one stopping): keep the messages and try
                // again, also while this node stops, until its drain ends.
                LogEnqueueFailed(_logger, ex, client.ClientId, ++failures);
                await PauseAsync(failures);
            }
            catch (Exception ex)
            {
                int dropped;
                lock (client.Outbox)
                {
                    dropped = client.Outbox.Count;
                    Interlocked.Add(ref _droppedWhileStopping, dropped);
                    _metrics.SessionMessagesDropped.Add(dropped);
                    client.Outbox.Clear();
                    client.Sending = false;
                    Interlocked.Decrement(ref _senders);
                }

                LogDroppedStopping(_logger, ex, dropped, client.ClientId);
                return;
            }
        }
    }

    /// <summary>
    /// One batch to the session's grain: queued there, or handed to the node its client is connected to now. A session
    /// that moved away (or that the grain says is hosted elsewhere now: adopted by the node this one handed its sessions
    /// to, or resumed on another node) gets it as a replay, and follows its move from here on; an expired or ended one
    /// takes nothing.
    /// </summary>
    private async Task SendBatchAsync(HostedClient client, List<QueuedMessage> batch, bool moved)
    {
        if (moved)
        {
            await FollowAsync(client.ClientId, batch);
            return;
        }

        var result = await _grains.Reference<IClientSessionGrain>(client.ClientId).Enqueue(NodeId, client.SessionId, batch);
        if (!result.Accepted)
        {
            await FollowAsync(client.ClientId, batch);
            await MoveAwayAsync(client);
        }
        else if (result.OnlineNodeId is { } online)
        {
            await RelayAsync(client.ClientId, online, batch);
        }
        else
        {
            _metrics.SessionMessagesQueued.Add(batch.Count);
        }
    }

    /// <summary>
    /// Waits (at most <paramref name="timeout"/>) for the messages held for offline sessions to reach their grains; a
    /// sender whose grain call fails meanwhile keeps retrying. From the end of the drain a failed send gives up (counted
    /// and logged), and what is still held is logged: this node is going.
    /// </summary>
    public async Task<bool> DrainAsync(TimeSpan timeout)
    {
        // Counted by sender, not by the sessions listed here: a session forgotten meanwhile may still be sending.
        var until = _time.GetUtcNow() + timeout;
        while (Volatile.Read(ref _senders) > 0 && _time.GetUtcNow() < until)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(20), _time);
        }

        _drained = true;
        var senders = Volatile.Read(ref _senders);
        if (senders > 0)
        {
            var held = _clients.Values.Sum(c => { lock (c.Outbox) { return c.Outbox.Count; } });
            LogDrainEndedHolding(_logger, held, senders, timeout);
        }

        return senders == 0 && Volatile.Read(ref _droppedWhileStopping) == 0;
    }

    /// <summary>
    /// Between attempts to reach a session's grain: backing off up to 5 s while the node runs, 100 ms once it stops
    /// (the drain is short, and a backed-off sender would sleep through it). A stop cuts a longer pause short.
    /// </summary>
    private async Task PauseAsync(int failures)
    {
        if (_stopping.IsCancellationRequested)
        {
            await Task.Delay(StoppingRetry, _time);
            return;
        }

        try
        {
            await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(5000, 100 * (1 << Math.Min(failures, 6)))), _time, _stopping);
        }
        catch (OperationCanceledException)
        {
            // stopping: retry at once
        }
    }

    /// <summary>
    /// Messages for a session that lives elsewhere now, handed to its grain as a replay: it keeps those its
    /// subscriptions take (once: one already queued is not queued again) and names the node its client is connected
    /// to, if any, which gets them. What it does not take (the session ended, or no longer subscribes) is not owed.
    /// </summary>
    private async Task FollowAsync(string clientId, List<QueuedMessage> batch)
    {
        var result = await _grains.Reference<IClientSessionGrain>(clientId).Replay(NodeId, [.. batch.Select(q => q.Message)]);
        if (result.OnlineNodeId is { } online && result.ForOnline.Count > 0)
        {
            await RelayAsync(clientId, online, result.ForOnline);
        }

        _metrics.SessionMessagesFollowed.Add(batch.Count);
    }

    /// <summary>
    /// The session lives on another node now: its filters are withdrawn from the other nodes' routes, and it stays
    /// matched here for <see cref="MovedGrace"/>, so what they forwarded before they saw the move still follows it.
    /// </summary>
    private async Task MoveAwayAsync(HostedClient client)
    {
        lock (client.Outbox)
        {
            if (client.MovedAt is not null)
            {
                return;
            }

            client.MovedAt = _time.GetUtcNow();
        }

        LogMovedAway(_logger, client.ClientId);
        if (!client.Online)
        {
            await _router.SessionEndedAsync(client.ClientId);
        }
    }

    /// <summary>
    /// The client came back while messages were on their way to its queue: hand them to its connection, on the node its
    /// grain names. A node this one does not know (just started, or gone) is looked up in the directory; one that is not
    /// there either gets nothing: the messages go back to the session's queue, for the client's next connection.
    /// </summary>
    private async Task RelayAsync(string clientId, string nodeId, IReadOnlyList<QueuedMessage> messages)
    {
        if (nodeId == NodeId)
        {
            await DeliverLocalAsync(clientId, messages);
        }
        else if (await _router.ResolveAsync(nodeId) is { } node)
        {
            await node.DeliverToClient(clientId, messages);
        }
        else
        {
            LogNodeUnknown(_logger, messages.Count, clientId, nodeId);
            var (kept, _) = await _grains.Reference<IClientSessionGrain>(clientId).Undeliverable(nodeId, messages);
            if (!kept)
            {
                _metrics.SessionMessagesDropped.Add(messages.Count);   // the session ended meanwhile: nothing is owed
            }
        }
    }

    /// <summary>
    /// Hands queued messages to this node's connection of the client, with what is left of their expiry. Those that
    /// find no connection here (its grain counted it as connected here, and it is not: a CONNECT that attached and then
    /// failed, or one that ended meanwhile) go back to the session's grain, queued for its next connection.
    /// </summary>
    public async Task<int> DeliverLocalAsync(string clientId, IReadOnlyList<QueuedMessage> messages)
    {
        List<QueuedMessage>? homeless = null;
        var delivered = Deliver(clientId, messages, ref homeless);
        if (homeless is not null)
        {
            await ReturnAsync(clientId, homeless);
        }

        return delivered;
    }

    private async Task ReturnAsync(string clientId, List<QueuedMessage> messages)
    {
        try
        {
            var (kept, online) = await _grains.Reference<IClientSessionGrain>(clientId).Undeliverable(NodeId, messages);
            if (online is not null)
            {
                await RelayAsync(clientId, online, messages);
            }
            else if (!kept)
            {
                _metrics.SessionMessagesDropped.Add(messages.Count);   // a clean session's: it ended with its connection
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            _metrics.SessionMessagesDropped.Add(messages.Count);
            LogReturnFailed(_logger, ex, messages.Count, clientId);
        }
    }

    private int Deliver(string clientId, IReadOnlyList<QueuedMessage> messages, ref List<QueuedMessage>? homeless)
    {
        var now = _time.GetUtcNow();
        var delivered = 0;
        foreach (var queued in messages)
        {
            var message = ForwardedMessages.ToMqtt(queued.Message, queued.Retain);
            if (queued.Message.MessageExpiryInterval > 0 && queued.QueuedAt != default)
            {
                var left = queued.Message.MessageExpiryInterval - (now - queued.QueuedAt).TotalSeconds;
                if (left < 1)
                {
                    continue;   // expired while queued (MQTT 5 3.3.2.3.3)
                }

                message.MessageExpiryInterval = (uint)left;
            }

            var packet = MQTTnet.Server.Internal.Formatter.MqttPublishPacketFactory.Create(message);
            packet.SubscriptionIdentifiers = queued.SubscriptionIdentifiers is { Count: > 0 } ids ? [.. ids] : null;
            var sent = _local.TrySend(clientId, packet, congested: null);
            if (sent == SendResult.Sent)
            {
                delivered++;
            }
            else if (sent == SendResult.Refused)
            {
                _metrics.SessionMessagesDropped.Add(1);   // iot:Receive no longer allows it, or its queue is full (counted there)
            }
            else if (_connecting.TryGetValue(clientId, out var connecting) && connecting.TryHold(queued))
            {
                // The grain counts the client as connected here from its CONNECT on; the connection is not open yet.
            }
            else if (_local.Send(clientId, packet, congested: null))
            {
                delivered++;   // it opened meanwhile
            }
            else
            {
                (homeless ??= []).Add(queued);
            }
        }

        _metrics.PublishesOut.Add(delivered);
        return delivered;
    }

    private void AddOffline(HostedClient client)
    {
        _offlineLock.EnterWriteLock();
        try
        {
            foreach (var s in client.Subscriptions)
            {
                _offline.Add(s.Filter, client.ClientId);
            }

            _offlineFilters = _offline.FilterCount;
        }
        finally
        {
            _offlineLock.ExitWriteLock();
        }
    }

    private bool RemoveOffline(HostedClient client)
    {
        if (client.Online)
        {
            return false;
        }

        client.Online = true;   // no longer matched here
        _offlineLock.EnterWriteLock();
        try
        {
            _offline.RemoveOwner(client.ClientId);
            _offlineFilters = _offline.FilterCount;
        }
        finally
        {
            _offlineLock.ExitWriteLock();
        }

        return true;
    }
}
