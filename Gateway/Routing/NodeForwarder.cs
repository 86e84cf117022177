using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// The queue of messages for one other node and the loop that sends them in batches, one call at a time, so each
/// publisher's messages reach the other node in publish order. A batch that fails is tried again until it gets through
/// or the node is declared gone, never dropped; the QoS 1/2 messages sent in the last
/// <see cref="RoutingOptions.ReplayWindow"/> are kept too. When the node is gone, <see cref="StopAsync"/> hands all of
/// them over, to be replayed to the persistent sessions it hosted (see <see cref="ClusterRouter"/>).
/// </summary>
internal sealed partial class NodeForwarder : IAsyncDisposable
{
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(2);

    private readonly Channel<ForwardedMessage> _queue;
    private readonly string _fromNodeId;
    private readonly RouteNodeEntry _target;
    private readonly int _maxBatchSize;
    private readonly RoutingOptions _options;
    private readonly TimeProvider _time;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _sentLock = new();
    private readonly Queue<(DateTimeOffset At, ForwardedMessage Message)> _sent = new();
    private readonly Task _loop;
    private ForwardedBatch? _failing;
    private volatile Action<ForwardedMessage>? _late;   // where a message enqueued after StopAsync goes
    private volatile bool _draining;                    // this node is stopping (DrainAsync): the queue takes no more

    public NodeForwarder(string fromNodeId, RouteNodeEntry target, RoutingOptions options, TimeProvider time, GatewayMetrics metrics, ILogger logger)
    {
        _fromNodeId = fromNodeId;
        _target = target;
        _maxBatchSize = options.MaxBatchSize;
        _options = options;
        _time = time;
        _metrics = metrics;
        _logger = logger;
        _queue = Channel.CreateBounded<ForwardedMessage>(new BoundedChannelOptions(options.ForwardQueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,   // TryWrite fails instead of blocking the publish path
        });
        _loop = Task.Run(SendLoopAsync);
    }

    public void Enqueue(ForwardedMessage message)
    {
        if (!_queue.Writer.TryWrite(message))
        {
            if (_late is { } late)
            {
                // Stopped (its node is gone) while a publish that had matched its routes was on its way here: replayed
                // with the rest, or (QoS 0, shared) counted as lost with the node, as those are not replayed.
                if (Replayable(message))
                {
                    late(message);
                }
                else
                {
                    _metrics.ForwardDropped.Add(1);
                }

                return;
            }

            _metrics.ForwardDropped.Add(1);
            if (_draining)
            {
                LogDroppedWhileStopping(_logger, _target.NodeId, message.Topic);
            }
            else
            {
                LogQueueFull(_logger, _target.NodeId, message.Topic);
            }
        }
    }

    /// <summary>
    /// Stops sending (the node is gone) and returns, oldest first, the QoS 1/2 messages it may not have delivered: those
    /// sent within the replay window, the batch being retried, and those still queued. A message enqueued from now on
    /// (a publish that matched the node's routes just before they were removed) goes to <paramref name="late"/>.
    /// </summary>
    public async Task<IReadOnlyList<ForwardedMessage>> StopAsync(Action<ForwardedMessage> late)
    {
        _late = late;
        await DisposeAsync();
        var undelivered = new List<ForwardedMessage>();
        var since = _time.GetUtcNow() - _options.ReplayWindow;
        lock (_sentLock)
        {
            undelivered.AddRange(_sent.Where(s => s.At >= since).Select(s => s.Message));
            _sent.Clear();
        }

        if (_failing is { } failing)
        {
            undelivered.AddRange(failing.Messages.Where(Replayable));
        }

        while (_queue.Reader.TryRead(out var queued))
        {
            if (Replayable(queued))
            {
                undelivered.Add(queued);
            }
        }

        return undelivered;
    }

    /// <summary>
    /// The other node stopped and handed on all it took from this one: the delivered messages kept to replay to it are
    /// dropped (how many). What is queued or failing stays.
    /// </summary>
    public int ForgetSent()
    {
        lock (_sentLock)
        {
            var count = _sent.Count;
            _sent.Clear();
            return count;
        }
    }

    /// <summary>This node is stopping: no more messages, and what is queued is sent first (at most <paramref name="timeout"/>).</summary>
    public async Task DrainAsync(TimeSpan timeout)
    {
        _draining = true;
        _queue.Writer.TryComplete();
        await Task.WhenAny(_loop, Task.Delay(timeout, _time));
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (!_stop.IsCancellationRequested)
        {
            await _stop.CancelAsync();
        }

        await _loop;
    }

    /// <summary>QoS 1/2 and not for a shared subscription (a shared group's message goes to one live member, not to a session queue).</summary>
    private static bool Replayable(ForwardedMessage message) => message.Qos > 0 && message.SharedTarget is null;

    private async Task SendLoopAsync()
    {
        var batch = new List<ForwardedMessage>(_maxBatchSize);
        var reader = _queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(_stop.Token))
            {
                while (batch.Count < _maxBatchSize && reader.TryRead(out var message))
                {
                    batch.Add(message);
                }

                await SendAsync(new ForwardedBatch(_fromNodeId, [.. batch]));
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (_stop.IsCancellationRequested)
        {
        }
    }

    private async Task SendAsync(ForwardedBatch batch)
    {
        _failing = batch;
        for (var failures = 0; ; failures++)
        {
            try
            {
                await _target.Reference.Deliver(batch);
                _metrics.Forwarded.Add(batch.Messages.Count);
                Remember(batch);
                _failing = null;
                if (failures > 0)
                {
                    LogForwardRecovered(_logger, _target.NodeId, failures);
                }

                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !_stop.IsCancellationRequested)
            {
                // The node is slow, restarting, or dead: keep the batch (and everything queued behind it) until it
                // answers or the directory declares it gone; then its persistent sessions get them by replay.
                if (failures == 0 || failures % 20 == 0)
                {
                    LogForwardFailing(_logger, ex, batch.Messages.Count, _target.NodeId, failures + 1);
                }

                await Task.Delay(TimeSpan.FromMilliseconds(Math.Min(MaxRetryDelay.TotalMilliseconds, 50 * (1 << Math.Min(failures, 6)))), _time, _stop.Token);
            }
        }
    }

    private void Remember(ForwardedBatch batch)
    {
        if (_options.ReplayCapacity == 0 || _options.ReplayWindow == TimeSpan.Zero)
        {
            return;
        }

        var now = _time.GetUtcNow();
        var since = now - _options.ReplayWindow;
        lock (_sentLock)
        {
            foreach (var message in batch.Messages)
            {
                if (Replayable(message))
                {
                    _sent.Enqueue((now, message));
                }
            }

            while (_sent.Count > 0 && (_sent.Count > _options.ReplayCapacity || _sent.Peek().At < since))
            {
                _sent.Dequeue();
            }
        }
    }

    [LoggerMessage(EventId = 1033, Level = LogLevel.Warning, Message = "Forward queue to node {NodeId} is full: dropped a message on {Topic}")]
    private static partial void LogQueueFull(ILogger logger, string nodeId, string topic);

    [LoggerMessage(EventId = 1079, Level = LogLevel.Warning, Message = "This node is stopping: a message for node {NodeId} on {Topic} came after its forwarder had sent what it held, and was dropped")]
    private static partial void LogDroppedWhileStopping(ILogger logger, string nodeId, string topic);

    [LoggerMessage(EventId = 1034, Level = LogLevel.Warning, Message = "Could not forward {Count} messages to node {NodeId} (attempt {Attempt}); kept, trying again until it answers or is declared gone")]
    private static partial void LogForwardFailing(ILogger logger, Exception exception, int count, string nodeId, int attempt);

    [LoggerMessage(EventId = 1035, Level = LogLevel.Information, Message = "Forwarding to node {NodeId} works again after {Failures} failed attempts")]
    private static partial void LogForwardRecovered(ILogger logger, string nodeId, int failures);
}
