using MQTTnet;
using MQTTnet.Internal;
using MQTTnet.Packets;
using MQTTnet.Server;
using MQTTnet.Server.Internal;
using MQTTnet.Server.Internal.Formatter;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// Delivers messages to this node's subscribers. MQTTnet's own dispatch checks every session that has any
/// subscription for every message: with 10,000 idle devices each subscribed to its own command topic, p2p QoS 1 fell
/// from 10,959 to 589 msg/s (Mosquitto: 15,516 to 13,972). Here a topic trie finds the sessions whose filters match
/// (time proportional to the topic's levels), and only those are checked by MQTTnet's own session logic
/// (<see cref="MqttSession.TryCheckSubscriptions"/>: QoS downgrade, no-local, retain as published, subscription
/// identifiers) and enqueued, exactly as MQTTnet's dispatch does. MQTTnet keeps subscriptions and retained messages.
/// </summary>
internal sealed class LocalSubscribers(Mqtt.LiveConnections connections, Microsoft.Extensions.Options.IOptions<Hosting.MqttOptions> options, GatewayMetrics metrics) : IDisposable
{
    /// <summary>AWS: at most 100 unacknowledged QoS 1 messages to a client; a client may ask for fewer (Receive Maximum).</summary>
    public const int MaxInFlight = 100;

    // MQTTnet's list of a session's unacknowledged QoS 1/2 packets (not exposed; pinned to MQTTnet 5.2 by the
    // receive-maximum tests), read through a compiled accessor: it is read for every QoS 1/2 delivery.
    private static readonly Func<MqttSession, List<MqttPublishPacket>?> UnacknowledgedOf = CompileUnacknowledged();

    private readonly int _maxBacklog = options.Value.MaxPendingMessagesPerClient;
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Backlog> _backlogs = new(StringComparer.Ordinal);

    private readonly ReaderWriterLockSlim _lock = new(LockRecursionPolicy.NoRecursion);
    private readonly TopicTree<string> _filters = new();
    private readonly Dictionary<string, MqttSession> _sessions = new(StringComparer.Ordinal);

    [ThreadStatic]
    private static HashSet<string>? t_owners;

    [ThreadStatic]
    private static List<MqttSession>? t_sessions;

    /// <summary>A local client subscribed (shared subscriptions are delivered by the router, not here).</summary>
    public void Subscribed(string clientId, string filter, object? session)
    {
        if (TopicFilter.IsShared(filter) || session is not MqttSession mqttSession)
        {
            return;
        }

        _lock.EnterWriteLock();
        try
        {
            _filters.Add(filter, clientId);
            _sessions[clientId] = mqttSession;   // a clean start's new session replaces the old one
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    public void Unsubscribed(string clientId, string filter)
    {
        _lock.EnterWriteLock();
        try
        {
            _filters.Remove(filter, clientId);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>The client's MQTTnet session ended (or was replaced by a clean one).</summary>
    public void SessionEnded(string clientId)
    {
        _backlogs.TryRemove(clientId, out _);
        _lock.EnterWriteLock();
        try
        {
            _filters.RemoveOwner(clientId);
            _sessions.Remove(clientId);
        }
        finally
        {
            _lock.ExitWriteLock();
        }
    }

    /// <summary>
    /// Enqueues the message for every local session subscribed to its topic; the message must own its payload
    /// (it stays queued after the caller returns). Returns how many sessions got it.
    /// </summary>
    public int Deliver(MqttApplicationMessage message, string senderClientId)
    {
        var owners = t_owners ??= new HashSet<string>(StringComparer.Ordinal);
        var sessions = t_sessions ??= [];
        owners.Clear();
        sessions.Clear();
        _lock.EnterReadLock();
        try
        {
            if (_filters.FilterCount == 0)
            {
                return 0;
            }

            _filters.Match(message.Topic, owners);
            foreach (var owner in owners)
            {
                if (_sessions.TryGetValue(owner, out var session))
                {
                    sessions.Add(session);
                }
            }
        }
        finally
        {
            _lock.ExitReadLock();
        }

        if (sessions.Count == 0)
        {
            return 0;
        }

        MqttTopicHash.Calculate(message.Topic, out var topicHash, out _, out _);
        var delivered = 0;
        foreach (var session in sessions)
        {
            if (!session.TryCheckSubscriptions(message.Topic, topicHash, message.QualityOfServiceLevel, senderClientId, out var check) || !check.IsSubscribed)
            {
                continue;
            }

            var meter = connections.Find(session.Id);
            if (meter is { MaximumPacketSize: > 0 } && Mqtt.DeliveryCounter.EstimatedSize(message) > meter.MaximumPacketSize)
            {
                continue;   // MQTT 5: never send a client more than its Maximum Packet Size
            }

            if (meter?.Access is { } access && !access.MayReceive(message.Topic))
            {
                metrics.Denied.Add(1);   // iot:Receive on every delivery (AWS): revoking it stops existing subscriptions
                continue;
            }

            var packet = MqttPublishPacketFactory.Create(message);
            packet.QualityOfServiceLevel = check.QualityOfServiceLevel;
            packet.SubscriptionIdentifiers = check.SubscriptionIdentifiers;
            packet.Retain = check.RetainAsPublished && message.Retain;
            if (!Send(session, packet, meter))
            {
                continue;
            }

            meter?.CountOut(message.Payload.Length);
            delivered++;
        }

        sessions.Clear();
        metrics.PublishesOut.Add(delivered);
        return delivered;
    }

    /// <summary>
    /// Delivers a message to one local client, if it subscribed to the topic (answers meant for the requester alone,
    /// such as fleet provisioning's, which carry a private key). False when it is not here or not subscribed.
    /// </summary>
    public bool DeliverToOne(string clientId, MqttApplicationMessage message)
    {
        MqttSession? session;
        _lock.EnterReadLock();
        try
        {
            _sessions.TryGetValue(clientId, out session);
        }
        finally
        {
            _lock.ExitReadLock();
        }

        MqttTopicHash.Calculate(message.Topic, out var topicHash, out _, out _);
        if (session is null || !session.TryCheckSubscriptions(message.Topic, topicHash, message.QualityOfServiceLevel, "", out var check) || !check.IsSubscribed)
        {
            return false;
        }

        var packet = MqttPublishPacketFactory.Create(message);
        packet.QualityOfServiceLevel = check.QualityOfServiceLevel;
        var meter = connections.Find(clientId);
        if (!Send(session, packet, meter))
        {
            return false;
        }

        meter?.CountOut(message.Payload.Length);
        metrics.PublishesOut.Add(1);
        return true;
    }

    /// <summary>
    /// Hands a packet to a session, keeping at most the client's in-flight limit of QoS 1/2 messages unacknowledged
    /// (MQTT 5 Receive Maximum, AWS 100; MQTTnet's send loop does not wait for acknowledgements): beyond it packets
    /// wait here, in order, and go out as acknowledgements come back. False when the session is gone.
    /// </summary>
    public bool Send(MqttSession session, MqttPublishPacket packet, Mqtt.ConnectionMeter? meter)
    {
        if (_backlogs.TryGetValue(session.Id, out var backlog) && backlog.Session == session)
        {
            lock (backlog)
            {
                if (backlog.Packets.Count > 0)
                {
                    Hold(backlog, packet);
                    return true;
                }
            }
        }

        if (packet.QualityOfServiceLevel > MQTTnet.Protocol.MqttQualityOfServiceLevel.AtMostOnce && Unacknowledged(session) >= Limit(meter))
        {
            backlog = _backlogs.AddOrUpdate(session.Id, _ => new Backlog(session, meter), (_, b) => b.Session == session ? b : new Backlog(session, meter));
            lock (backlog)
            {
                Hold(backlog, packet);
            }

            return true;
        }

        try
        {
            session.EnqueueDataPacket(new MqttPacketBusItem(packet));
            return true;
        }
        catch (ObjectDisposedException)
        {
            return false;   // the session ended between the match and now (MQTTnet's dispatch has the same race)
        }
    }

    /// <summary>MQTTnet's acknowledgement event: room in the client's window, so held packets go out.</summary>
    public Task AcknowledgedAsync(ClientAcknowledgedPublishPacketEventArgs e)
    {
        if (!_backlogs.TryGetValue(e.ClientId, out var backlog))
        {
            return Task.CompletedTask;
        }

        lock (backlog)
        {
            while (backlog.Packets.Count > 0)
            {
                var next = backlog.Packets.Peek();
                if (next.QualityOfServiceLevel > MQTTnet.Protocol.MqttQualityOfServiceLevel.AtMostOnce && Unacknowledged(backlog.Session) >= Limit(backlog.Meter))
                {
                    break;
                }

                backlog.Packets.Dequeue();
                try
                {
                    backlog.Session.EnqueueDataPacket(new MqttPacketBusItem(next));
                }
                catch (ObjectDisposedException)
                {
                    backlog.Packets.Clear();
                }
            }
        }

        return Task.CompletedTask;
    }

    /// <summary>How many packets wait for room in a client's window (for operators and tests).</summary>
    public int Held(string clientId)
    {
        if (!_backlogs.TryGetValue(clientId, out var backlog))
        {
            return 0;
        }

        lock (backlog)
        {
            return backlog.Packets.Count;
        }
    }

    /// <summary>The packets still held for a client whose session ended (a persistent session queues them).</summary>
    public IReadOnlyList<MqttPublishPacket> TakeBacklog(string clientId)
    {
        if (!_backlogs.TryRemove(clientId, out var backlog))
        {
            return [];
        }

        lock (backlog)
        {
            var packets = backlog.Packets.ToList();
            backlog.Packets.Clear();
            return packets;
        }
    }

    private void Hold(Backlog backlog, MqttPublishPacket packet)
    {
        backlog.Packets.Enqueue(packet);
        if (backlog.Packets.Count > _maxBacklog)
        {
            backlog.Packets.Dequeue();   // a subscriber that stopped acknowledging: oldest first, as MQTTnet's own queue
            metrics.SlowSubscriberDropped.Add(1);
        }
    }

    private static int Limit(Mqtt.ConnectionMeter? meter) =>
        meter is { ReceiveMaximum: > 0 and < MaxInFlight } ? meter.ReceiveMaximum : MaxInFlight;

    private static int Unacknowledged(MqttSession session) => UnacknowledgedOf(session)?.Count ?? 0;

    private static Func<MqttSession, List<MqttPublishPacket>?> CompileUnacknowledged()
    {
        var field = typeof(MqttSession).GetField("_unacknowledgedPublishPackets", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance);
        if (field is null || field.FieldType != typeof(List<MqttPublishPacket>))
        {
            return _ => null;   // another MQTTnet version: no window (the tests say so)
        }

        var session = System.Linq.Expressions.Expression.Parameter(typeof(MqttSession));
        return System.Linq.Expressions.Expression.Lambda<Func<MqttSession, List<MqttPublishPacket>?>>(
            System.Linq.Expressions.Expression.Field(session, field), session).Compile();
    }

    public void Dispose() => _lock.Dispose();

    private sealed class Backlog(MqttSession session, Mqtt.ConnectionMeter? meter)
    {
        public MqttSession Session { get; } = session;
        public Mqtt.ConnectionMeter? Meter { get; } = meter;
        public Queue<MqttPublishPacket> Packets { get; } = new();
    }
}
