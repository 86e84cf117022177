using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;
using Orleans.Streams;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Telemetry;

namespace OrleansIot.Gateway.Telemetry;

/// <summary>
/// Puts accepted publishes on the telemetry stream. One queue and one writer per partition: the writer takes
/// whatever is waiting (up to <see cref="TelemetryOptions.MaxBatchSize"/>) and writes it as one stream event, so
/// under load the stream cost is per batch, and when idle a message goes out at once (no batching timer).
/// With <see cref="TelemetryOptions.AcknowledgeAfterWrite"/> a QoS 1/2 publish completes only when its batch is on
/// the stream, so its PUBACK means "accepted".
/// </summary>
internal sealed partial class TelemetryPublisher : IHostedService, IDisposable
{
    private readonly IClusterClient _cluster;
    private readonly GatewayMetrics _metrics;
    private readonly ILogger<TelemetryPublisher> _logger;
    private readonly TelemetryOptions _options;
    private readonly Channel<Pending>[] _queues;
    private readonly List<Task> _writers = [];
    private readonly CancellationTokenSource _stopping = new();
    private readonly TimeProvider _time;
    private readonly RuleTopics _rules;

    /// <summary>
    /// The pauses before each further try of a stream write that failed for a passing reason (PostgreSQL restarting:
    /// every pooled connection's next use fails once), 1.85 s in all: the publishers' PUBACKs wait meanwhile, instead
    /// of their publishes being refused.
    /// </summary>
    internal static readonly TimeSpan[] RetryDelays =
        [TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1)];

    public TelemetryPublisher(IClusterClient cluster, RuleTopics rules, IOptions<TelemetryOptions> options, GatewayMetrics metrics, ILogger<TelemetryPublisher> logger, TimeProvider time)
    {
        _rules = rules;
        _time = time;
        _cluster = cluster;
        _metrics = metrics;
        _logger = logger;
        _options = options.Value;
        _queues = new Channel<Pending>[_options.Partitions];
        for (var i = 0; i < _queues.Length; i++)
        {
            _queues[i] = Channel.CreateBounded<Pending>(new BoundedChannelOptions(_options.QueueCapacity)
            {
                SingleReader = true,
                FullMode = BoundedChannelFullMode.Wait,
            });
        }
    }

    /// <summary>Queues a message best effort, as a QoS 0 publish (a full queue drops it, counted and logged).</summary>
    /// <param name="message">The message.</param>
    /// <param name="partitionKey">What picks the partition; the client id unless given.</param>
    public void Offer(TelemetryMessage message, string? partitionKey = null)
    {
        var queue = _queues[TelemetryPartitions.For(partitionKey ?? message.ClientId, _queues.Length)];
        if (!queue.Writer.TryWrite(new Pending(message, null)))
        {
            _metrics.TelemetryDropped.Add(1);
            LogDropped(_logger, message.ClientId, message.Topic);
        }
    }

    /// <summary>
    /// Queues a message. For QoS 0 returns at once (a full queue drops the message and counts it); otherwise the
    /// task completes when the message is on the stream, or fails when it could not be written.
    /// </summary>
    /// <param name="message">The message.</param>
    /// <param name="cancellationToken">Cancels waiting for room or for the write.</param>
    /// <param name="partitionKey">What picks the partition; the client id unless given (platform messages use their topic).</param>
    public ValueTask PublishAsync(TelemetryMessage message, CancellationToken cancellationToken, string? partitionKey = null)
    {
        if (message.Qos == 0)
        {
            Offer(message, partitionKey);
            return ValueTask.CompletedTask;
        }

        var queue = _queues[TelemetryPartitions.For(partitionKey ?? message.ClientId, _queues.Length)];
        if (_options.AcknowledgeAfterWrite != true)
        {
            // Not waiting for the write: only for room in the queue (back-pressure, never a drop).
            var unacknowledged = new Pending(message, null);
            return queue.Writer.TryWrite(unacknowledged) ? ValueTask.CompletedTask : queue.Writer.WriteAsync(unacknowledged, cancellationToken);
        }

        var accepted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var pending = new Pending(message, accepted);
        if (queue.Writer.TryWrite(pending))
        {
            return new ValueTask(accepted.Task);
        }

        return WaitForRoomAsync(queue, pending, cancellationToken);
    }

    private static async ValueTask WaitForRoomAsync(Channel<Pending> queue, Pending pending, CancellationToken cancellationToken)
    {
        await queue.Writer.WriteAsync(pending, cancellationToken);
        await pending.Accepted!.Task;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var provider = _cluster.GetStreamProvider(StreamNames.Provider);
        for (var i = 0; i < _queues.Length; i++)
        {
            var stream = provider.GetStream<TelemetryBatch>(StreamId.Create(StreamNames.Telemetry, TelemetryPartitions.StreamKey(i)));
            _writers.Add(WriteLoopAsync(i, _queues[i].Reader, stream));
        }

        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        // Drain: writers finish what is queued (the MQTT server stops first, so nothing new arrives).
        foreach (var queue in _queues)
        {
            queue.Writer.TryComplete();
        }

        await using (cancellationToken.Register(_stopping.Cancel))
        {
            await Task.WhenAll(_writers);
        }
    }

    private async Task WriteLoopAsync(int partition, ChannelReader<Pending> reader, IAsyncStream<TelemetryBatch> stream)
    {
        var batch = new List<Pending>(_options.MaxBatchSize);
        while (await reader.WaitToReadAsync())
        {
            if (_options.Linger > TimeSpan.Zero)
            {
                // Let a batch fill for a moment: fewer, larger stream writes (each a database commit in PostgreSQL
                // mode) for a few milliseconds more until PUBACK.
                try
                {
                    await Task.Delay(_options.Linger, _stopping.Token);
                }
                catch (OperationCanceledException)
                {
                    // stopping: write what is there
                }
            }

            while (batch.Count < _options.MaxBatchSize && reader.TryRead(out var item))
            {
                batch.Add(item);
            }

            var messages = new TelemetryMessage[batch.Count];
            for (var i = 0; i < batch.Count; i++)
            {
                messages[i] = batch[i].Message;
            }

            try
            {
                await WriteAsync(stream, new TelemetryBatch(partition, messages) { RulesVersion = _rules.Version });
                _metrics.TelemetryBatches.Add(1);
                _metrics.TelemetryMessages.Add(messages.Length);
                foreach (var item in batch)
                {
                    item.Accepted?.TrySetResult();
                }
            }
            catch (Exception ex)
            {
                LogWriteFailed(_logger, ex, partition, messages.Length);
                _metrics.TelemetryDropped.Add(batch.Count(b => b.Accepted is null));   // nobody to tell: counted and logged
                foreach (var item in batch)
                {
                    item.Accepted?.TrySetException(ex);
                }
            }

            batch.Clear();
        }
    }

    private Task WriteAsync(IAsyncStream<TelemetryBatch> stream, TelemetryBatch batch) =>
        DatabaseErrors.RetryTransientAsync(() => stream.OnNextAsync(batch).WaitAsync(_stopping.Token), RetryDelays, _time,
            ex => LogWriteRetried(_logger, batch.Partition, batch.Messages.Count, ex.Message), _stopping.Token);

    public void Dispose() => _stopping.Dispose();

    private readonly record struct Pending(TelemetryMessage Message, TaskCompletionSource? Accepted);

    [LoggerMessage(EventId = 1062, Level = LogLevel.Warning, Message = "Telemetry queue full: dropped a QoS 0 message of {ClientId} on {Topic}")]
    private static partial void LogDropped(ILogger logger, string clientId, string topic);

    [LoggerMessage(EventId = 1082, Level = LogLevel.Warning, Message = "Writing {Count} messages to telemetry partition {Partition} failed for a passing reason ({Reason}); trying again")]
    private static partial void LogWriteRetried(ILogger logger, int partition, int count, string reason);

    [LoggerMessage(EventId = 1063, Level = LogLevel.Error, Message = "Could not write {Count} messages to telemetry partition {Partition}")]
    private static partial void LogWriteFailed(ILogger logger, Exception exception, int partition, int count);
}
