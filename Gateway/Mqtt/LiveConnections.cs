using System.Collections.Concurrent;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// The live MQTT connections of this node, by client id (the router closes them, the delivery counter meters
/// them), and the loop that flushes their usage to the thing grains. Writing counters
/// per message caps a node at ~1.7k msg/s on PostgreSQL; coalescing costs at most one grain call per active
/// connection per <see cref="UsageOptions.FlushInterval"/>.
/// </summary>
internal sealed partial class LiveConnections(IGrainFactory grains, IOptions<UsageOptions> options, ILogger<LiveConnections> logger) : BackgroundService
{
    private const int MaxConcurrentFlushes = 256;
    private readonly ConcurrentDictionary<string, LiveConnection> _live = new(StringComparer.Ordinal);

    // The connections that counted something since the flush last took them: an idle connection costs a flush nothing.
    private readonly ConcurrentQueue<LiveConnection> _counted = new();

    public int Count => _live.Count;

    public void Register(LiveConnection meter)
    {
        meter.CountedQueue = _counted;
        meter.Counted();   // whatever it counted before it had the queue
        _live[meter.ClientId] = meter;
    }

    /// <summary>Removes the meter unless a newer connection of the same client id replaced it already.</summary>
    public void Unregister(LiveConnection meter) => _live.TryRemove(new KeyValuePair<string, LiveConnection>(meter.ClientId, meter));

    /// <summary>Every live connection (a moment's view).</summary>
    public IEnumerable<LiveConnection> All => _live.Values;

    public LiveConnection? Find(string clientId) => _live.TryGetValue(clientId, out var meter) ? meter : null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(options.Value.FlushInterval);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken))
            {
                await FlushAsync();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }

        // Last flush at shutdown: disconnects report their own final usage, this covers the rest.
        await FlushAsync();
    }

    internal async Task FlushAsync()
    {
        var pending = new List<Task>();
        for (var n = _counted.Count; n > 0 && _counted.TryDequeue(out var meter); n--)
        {
            meter.Dequeued();   // before the take: a count after it queues the meter again
            var delta = meter.Take();
            if (delta.IsEmpty)
            {
                continue;
            }

            pending.Add(SendAsync(meter, delta));
            if (pending.Count >= MaxConcurrentFlushes)
            {
                await Task.WhenAll(pending);
                pending.Clear();
            }
        }

        await Task.WhenAll(pending);
    }

    private async Task SendAsync(LiveConnection meter, UsageDelta delta)
    {
        try
        {
            await grains.Reference<IThingGrain>(meter.ClientId).RecordUsage(delta);
        }
        catch (Exception ex)
        {
            meter.Restore(delta);
            LogFlushFailed(logger, ex, meter.ClientId);
        }
    }

    [LoggerMessage(EventId = 1014, Level = LogLevel.Warning, Message = "Could not flush usage of {ClientId}; it is kept for the next flush")]
    private static partial void LogFlushFailed(ILogger logger, Exception exception, string clientId);
}
