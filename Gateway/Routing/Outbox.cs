using Microsoft.Extensions.Logging;
using Microsoft.Extensions.ObjectPool;
using MQTTnet.Exceptions;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using OrleansIot.Gateway.Mqtt.Transport;

namespace OrleansIot.Gateway.Routing;

/// <summary>How a connection's outbound queue behaves (<c>Iot:Mqtt</c>, see <see cref="Hosting.MqttOptions"/>).</summary>
internal sealed record OutboxLimits(int HighWater, int Capacity, TimeSpan PublisherWaitLimit);

/// <summary>
/// Everything on its way to one connection: PUBLISH packets queued in order, the QoS 1/2 ones sent but not yet
/// acknowledged (at most the client's window: its MQTT 5 Receive Maximum, AWS's 100), and one writer that drains the
/// queue into the transport as far as the window allows, then flushes once.
/// <para>
/// The delivery policy. A subscriber that reads as fast as its publishers publish never sees its queue grow. When it
/// holds <see cref="OutboxLimits.HighWater"/> messages, each publisher that adds to it waits before its publish is
/// acknowledged, until the queue is below three quarters of that (back-pressure: the publishers slow to the
/// subscriber's pace); a subscriber that stays congested longer than <see cref="OutboxLimits.PublisherWaitLimit"/> is
/// marked stalled, and publishers stop waiting for it until it catches up. A stalled subscriber's queue may grow to
/// <see cref="OutboxLimits.Capacity"/>; beyond that, new messages for it are dropped: counted on its connection (its
/// thing's usage), in the metric <c>iot.delivery.dropped</c>, and logged once a minute with its client id.
/// </para>
/// </summary>
internal sealed partial class Outbox
{
    private const int MaxBatch = 256;

    // A pump's batch list, reused: a pump runs for every message a subscriber that keeps up gets (p2p: one at a time),
    // and a new list sized for a full batch was a quarter of all the bytes a delivered QoS 1 message allocated.
    private static readonly ObjectPool<List<MqttPacket>> Batches = new DefaultObjectPool<List<MqttPacket>>(new BatchPolicy(), 256);
    private static readonly TimeSpan LogEvery = TimeSpan.FromMinutes(1);

    private readonly Mqtt.LiveConnection _connection;
    private readonly MqttTransport _transport;
    private readonly OutboxLimits _limits;
    private readonly int _window;
    private readonly Hosting.GatewayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly object _gate = new();
    private readonly Queue<MqttPublishPacket> _queued = new();
    private readonly List<MqttPublishPacket> _inFlight = [];
    private readonly HashSet<ushort> _inFlightIds = [];
    private ushort _lastId;
    private bool _pumping;
    private bool _closed;   // Close() was called: the connection's session has ended here
    private bool _broken;   // a write failed: the connection is going away, nothing more is written
    private Action<MqttPublishPacket>? _late;   // where a QoS 1/2 packet routed here after Close() goes
    private bool _stalled;
    private bool _congested;
    private TaskCompletionSource? _room;
    private ITimer? _stallTimer;
    private long _dropped;
    private long _droppedSinceLog;
    private DateTimeOffset _loggedAt;

    public Outbox(Mqtt.LiveConnection connection, MqttTransport transport, int window, OutboxLimits limits, Hosting.GatewayMetrics metrics, ILogger logger, TimeProvider time)
    {
        _connection = connection;
        _transport = transport;
        _window = window;
        _limits = limits;
        _metrics = metrics;
        _logger = logger;
        _time = time;
    }

    public string ClientId => _connection.ClientId;

    /// <summary>At most this many QoS 1/2 messages are sent and not yet acknowledged.</summary>
    public int Window => _window;

    /// <summary>Messages dropped for this connection since it connected (its queue was full).</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    /// <summary>Queued, not yet sent.</summary>
    public int Queued
    {
        get
        {
            lock (_gate)
            {
                return _queued.Count;
            }
        }
    }

    /// <summary>Sent with QoS 1/2, not yet acknowledged.</summary>
    public int InFlight
    {
        get
        {
            lock (_gate)
            {
                return _inFlight.Count;
            }
        }
    }

    /// <summary>Whether a publisher adding to this queue now should wait (<see cref="WaitForRoomAsync"/>).</summary>
    public bool Congested
    {
        get
        {
            lock (_gate)
            {
                return IsCongested();
            }
        }
    }

    /// <summary>Queues a packet (its packet identifier is given when it is sent). False when it was dropped or the connection is gone.</summary>
    public bool Enqueue(MqttPublishPacket packet)
    {
        bool start;
        Action<MqttPublishPacket>? late;
        lock (_gate)
        {
            late = _closed && packet.QualityOfServiceLevel > MqttQualityOfServiceLevel.AtMostOnce ? _late : null;
            if (_closed && late is null)
            {
                return false;
            }

            if (!_closed && _broken)
            {
                // The connection is going away and its session has not taken over yet: kept for Close() (QoS 1/2;
                // QoS 0 is at most once).
                if (packet.QualityOfServiceLevel == MqttQualityOfServiceLevel.AtMostOnce)
                {
                    return false;
                }

                _queued.Enqueue(packet);
                return true;
            }

            if (late is null)
            {
                if (_queued.Count >= _limits.Capacity)
                {
                    Drop(packet);
                    return false;
                }

                _queued.Enqueue(packet);
                _congested |= _queued.Count >= _limits.HighWater;
            }

            start = late is null && !_pumping;
            _pumping |= start;
        }

        if (late is not null)
        {
            // Matched just as the connection ended: its persistent session takes it, after what Close() returned.
            late(packet);
            return true;
        }

        if (start)
        {
            _ = PumpAsync();
        }

        return true;
    }

    /// <summary>
    /// Waits until the queue has room again (below three quarters of the high-water mark). A subscriber that does not
    /// get there within <see cref="OutboxLimits.PublisherWaitLimit"/> of becoming congested is marked stalled, and
    /// nobody waits for it until it does. One timer per congestion, not per waiting publish.
    /// </summary>
    public ValueTask WaitForRoomAsync(CancellationToken cancellationToken)
    {
        Task room;
        lock (_gate)
        {
            if (!IsCongested())
            {
                return ValueTask.CompletedTask;
            }

            if (_room is null)
            {
                _room = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _stallTimer = _time.CreateTimer(static state => ((Outbox)state!).Stalled(), this, _limits.PublisherWaitLimit, Timeout.InfiniteTimeSpan);
            }

            room = _room.Task;
        }

        return new ValueTask(cancellationToken.CanBeCanceled ? room.WaitAsync(cancellationToken) : room);
    }

    /// <summary>Waits for room in all of these queues at once (at most <see cref="OutboxLimits.PublisherWaitLimit"/>).</summary>
    public static Task WaitForRoomAsync(List<Outbox> congested, CancellationToken cancellationToken) => congested.Count switch
    {
        0 => Task.CompletedTask,
        1 => congested[0].WaitForRoomAsync(cancellationToken).AsTask(),
        _ => Task.WhenAll(congested.Distinct().Select(o => o.WaitForRoomAsync(cancellationToken).AsTask())),
    };

    /// <summary>The client acknowledged a QoS 1 (PUBACK) or QoS 2 (PUBCOMP) message: room in its window.</summary>
    public void Acknowledge(ushort packetIdentifier)
    {
        bool start;
        lock (_gate)
        {
            if (!_inFlightIds.Remove(packetIdentifier))
            {
                return;
            }

            _inFlight.RemoveAt(_inFlight.FindIndex(p => p.PacketIdentifier == packetIdentifier));
            start = !_pumping && !_closed && !_broken && _queued.Count > 0;
            _pumping |= start;
        }

        if (start)
        {
            _ = PumpAsync();
        }
    }

    /// <summary>
    /// The connection ended: what it was sent without acknowledging, then what was still queued, oldest first (QoS 1/2
    /// only), for a persistent session to keep; nothing more is written. A QoS 1/2 packet routed here from now on (it
    /// matched the connection's subscriptions just before they went) goes to <paramref name="late"/>, if given.
    /// </summary>
    public IReadOnlyList<MqttPublishPacket> Close(Action<MqttPublishPacket>? late = null)
    {
        lock (_gate)
        {
            _closed = true;
            _late = late;
            ReleaseWaiters();
            foreach (var sent in _inFlight)
            {
                sent.Dup = true;   // sent before: a redelivery says so
            }

            List<MqttPublishPacket> undelivered = [.. _inFlight, .. _queued.Where(p => p.QualityOfServiceLevel > MqttQualityOfServiceLevel.AtMostOnce)];
            _inFlight.Clear();
            _inFlightIds.Clear();
            _queued.Clear();
            return undelivered;
        }
    }

    private bool IsCongested() => _congested && !_closed && !_broken && !_stalled;

    private int ResumeAt => _limits.HighWater - (_limits.HighWater / 4);

    /// <summary>The subscriber did not catch up within the limit: publishers stop waiting for it until it does.</summary>
    private void Stalled()
    {
        int queued;
        lock (_gate)
        {
            if (_room is null)
            {
                return;
            }

            _stalled = true;
            queued = _queued.Count;
            ReleaseWaiters();
        }

        LogStalled(_logger, ClientId, queued, _limits.PublisherWaitLimit);
    }

    private void ReleaseWaiters()
    {
        _room?.TrySetResult();
        _room = null;
        _stallTimer?.Dispose();
        _stallTimer = null;
    }

    /// <summary>Writes what the window allows, a batch at a time (one flush per batch), until there is nothing to send.</summary>
    private async Task PumpAsync()
    {
        var batch = Batches.Get();
        try
        {
            while (true)
            {
                lock (_gate)
                {
                    while (batch.Count < MaxBatch && !_closed && !_broken && _queued.TryPeek(out var next))
                    {
                        if (next.QualityOfServiceLevel > MqttQualityOfServiceLevel.AtMostOnce)
                        {
                            if (_inFlight.Count >= _window)
                            {
                                break;
                            }

                            next.PacketIdentifier = NextIdentifier();
                            _inFlight.Add(next);
                        }

                        _queued.Dequeue();
                        batch.Add(next);
                    }

                    if (_congested && _queued.Count < ResumeAt)
                    {
                        _congested = false;
                        _stalled = false;
                        ReleaseWaiters();
                    }

                    if (batch.Count == 0)
                    {
                        _pumping = false;
                        return;
                    }
                }

                var tooLarge = await _transport.WriteAsync(batch, _connection.MaximumPacketSize, CancellationToken.None);
                foreach (var sent in batch)
                {
                    if (tooLarge?.Contains(sent) != true)
                    {
                        _connection.CountOut(((MqttPublishPacket)sent).Payload.Length);
                    }
                }

                if (tooLarge is not null)
                {
                    TooLarge(tooLarge);
                }

                batch.Clear();
            }
        }
        catch (Exception ex) when (ex is MqttCommunicationException or IOException or ObjectDisposedException or InvalidOperationException or OperationCanceledException)
        {
            // The connection is going away: what was sent unacknowledged stays for Close() (a persistent session
            // keeps it), and what is routed here until then is queued for it too; the rest of the batch was QoS 0.
            lock (_gate)
            {
                _pumping = false;
                _broken = true;
                ReleaseWaiters();
            }
        }
        finally
        {
            Batches.Return(batch);
        }
    }

    private ushort NextIdentifier()
    {
        do
        {
            _lastId = _lastId == ushort.MaxValue ? (ushort)1 : (ushort)(_lastId + 1);
        }
        while (!_inFlightIds.Add(_lastId));

        return _lastId;
    }

    /// <summary>
    /// Packets larger than the client's MQTT 5 Maximum Packet Size were not sent: the specification has the server
    /// discard them for that client (as if sent), so they are counted as dropped and leave the window.
    /// </summary>
    private void TooLarge(IReadOnlyList<MqttPacket> packets)
    {
        lock (_gate)
        {
            foreach (var packet in packets.OfType<MqttPublishPacket>())
            {
                if (packet.QualityOfServiceLevel > MqttQualityOfServiceLevel.AtMostOnce && _inFlightIds.Remove(packet.PacketIdentifier))
                {
                    _inFlight.Remove(packet);
                }

                Drop(packet, tooLarge: true);
            }
        }
    }

    private void Drop(MqttPublishPacket packet, bool tooLarge = false)
    {
        _connection.CountDropped();
        _dropped++;
        _droppedSinceLog++;
        _metrics.DeliveryDropped.Add(1, new KeyValuePair<string, object?>("qos", (int)packet.QualityOfServiceLevel));
        var now = _time.GetUtcNow();
        if (tooLarge)
        {
            LogTooLarge(_logger, ClientId, packet.Topic, _connection.MaximumPacketSize);
        }
        else if (now - _loggedAt >= LogEvery)
        {
            LogDropped(_logger, ClientId, _droppedSinceLog, _limits.Capacity, _dropped);
            _droppedSinceLog = 0;
            _loggedAt = now;
        }
    }

    [LoggerMessage(EventId = 1036, Level = LogLevel.Warning, Message = "Dropped {Count} messages for client {ClientId}: its queue was full ({Capacity} messages; it reads slower than its publishers publish); {Total} since it connected")]
    private static partial void LogDropped(ILogger logger, string clientId, long count, int capacity, long total);

    [LoggerMessage(EventId = 1037, Level = LogLevel.Debug, Message = "Not sent to {ClientId}: a message on {Topic} larger than its Maximum Packet Size ({Maximum} bytes)")]
    private static partial void LogTooLarge(ILogger logger, string clientId, string topic, uint maximum);

    [LoggerMessage(EventId = 1038, Level = LogLevel.Information, Message = "Client {ClientId} holds {Queued} queued messages and did not catch up within {Limit}: publishers no longer wait for it until it does")]
    private static partial void LogStalled(ILogger logger, string clientId, int queued, TimeSpan limit);

    private sealed class BatchPolicy : PooledObjectPolicy<List<MqttPacket>>
    {
        public override List<MqttPacket> Create() => new(16);

        public override bool Return(List<MqttPacket> obj)
        {
            obj.Clear();
            return true;
        }
    }
}
