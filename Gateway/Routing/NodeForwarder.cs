using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// The queue of messages for one other node and the loop that sends them in batches, one call at a time, so each
/// publisher's messages reach the other node in publish order.
/// </summary>
internal sealed partial class NodeForwarder : IAsyncDisposable
{
    private static readonly TimeSpan[] RetryDelays = [TimeSpan.FromMilliseconds(50), TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(1)];

    private readonly Channel<ForwardedMessage> _queue;
    private readonly string _fromNodeId;
    private readonly RouteNodeEntry _target;
    private readonly int _maxBatchSize;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;

    public NodeForwarder(string fromNodeId, RouteNodeEntry target, RoutingOptions options, GatewayMetrics metrics, ILogger logger)
    {
        _fromNodeId = fromNodeId;
        _target = target;
        _maxBatchSize = options.MaxBatchSize;
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
            _metrics.ForwardDropped.Add(1);
            LogQueueFull(_logger, _target.NodeId, message.Topic);
        }
    }

    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        await _stop.CancelAsync();
        await _loop;
        _stop.Dispose();
    }

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
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                await _target.Reference.Deliver(batch);
                _metrics.Forwarded.Add(batch.Messages.Count);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !_stop.IsCancellationRequested)
            {
                if (attempt >= RetryDelays.Length)
                {
                    // The node is gone or stuck: its subscribers miss these messages (QoS 0 semantics across a
                    // node loss; persistent sessions will cover QoS 1). The directory drops the node soon.
                    _metrics.ForwardDropped.Add(batch.Messages.Count);
                    LogForwardFailed(_logger, ex, batch.Messages.Count, _target.NodeId);
                    return;
                }

                await Task.Delay(RetryDelays[attempt], _stop.Token);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Forward queue to node {NodeId} is full: dropped a message on {Topic}")]
    private static partial void LogQueueFull(ILogger logger, string nodeId, string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not forward {Count} messages to node {NodeId}; dropped")]
    private static partial void LogForwardFailed(ILogger logger, Exception exception, int count, string nodeId);
}
