using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Providers;
using OrleansIot.Grains.Abstractions.FleetIndex;

namespace OrleansIot.Grains.FleetIndex;

/// <summary>
/// This node's shadow parts of the index, written behind: a thing grain hands over its new shadow section and answers
/// the device at once; the node writes what it holds once per <see cref="FleetIndexOptions.WriteBehind"/>, each
/// thing's latest section only, so a thing updating five times a second costs the index one write per round. Searches
/// stay read-your-writes: before each one the searching node asks every node to write what it holds
/// (<see cref="FlushEverywhereAsync"/>) and waits for that. What a node held when it died is rewritten by the repair
/// after a node's death (<see cref="FleetIndexAdminGrain"/>). A failed write keeps its sections for the next round
/// (unless a newer one came), counted and logged.
/// </summary>
public sealed partial class IndexWriteBehind : IControllable, IAsyncDisposable
{
    /// <summary>The name it answers to in <see cref="IManagementGrain.SendControlCommandToProvider{T}"/>.</summary>
    public const string ControlName = "fleet-index-write-behind";

    private const int FlushCommand = 1;

    private readonly IFleetIndexStore _store;
    private readonly ILogger<IndexWriteBehind> _logger;
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _flushing = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private Dictionary<string, Func<IndexSection?>> _pending = new(StringComparer.Ordinal);
    private int _disposed;

    public IndexWriteBehind(IFleetIndexStore store, IOptions<FleetIndexOptions> options, TimeProvider time, ILogger<IndexWriteBehind> logger)
    {
        _store = store;
        _logger = logger;
        _loop = LoopAsync(options.Value.WriteBehind, time);
    }

    /// <summary>Sections waiting to be written.</summary>
    public int Pending
    {
        get
        {
            lock (_lock)
            {
                return _pending.Count;
            }
        }
    }

    /// <summary>The thing's new shadow section (<c>null</c> clears the part), replacing one still waiting.</summary>
    public void Enqueue(string thingName, IndexSection? section) => Enqueue(thingName, () => section);

    /// <summary>
    /// The thing's new shadow section, built when the round writes it (from immutable inputs only: it runs outside the
    /// grain), replacing one still waiting.
    /// </summary>
    public void Enqueue(string thingName, Func<IndexSection?> build)
    {
        lock (_lock)
        {
            _pending[thingName] = build;
        }
    }

    /// <summary>Whether a section of this thing is still waiting.</summary>
    public bool Holds(string thingName)
    {
        lock (_lock)
        {
            return _pending.ContainsKey(thingName);
        }
    }

    /// <summary>Writes what this node holds and returns once everything handed over before the call is stored.</summary>
    public async Task FlushAsync()
    {
        // One round at a time: a caller waits for the round in progress (it may hold its sections), then writes the rest.
        await _flushing.WaitAsync();
        try
        {
            Dictionary<string, Func<IndexSection?>> round;
            lock (_lock)
            {
                if (_pending.Count == 0)
                {
                    return;
                }

                round = _pending;
                _pending = new(StringComparer.Ordinal);
            }

            var writes = round.Select(p => WriteAsync(p.Key, p.Value)).ToArray();
            try
            {
                await Task.WhenAll(writes);
                FleetIndexMetrics.WrittenBehind.Add(round.Count);
            }
            catch (Exception ex)
            {
                var failed = 0;
                lock (_lock)
                {
                    foreach (var ((thing, section), write) in round.Zip(writes))
                    {
                        if (!write.IsCompletedSuccessfully && _pending.TryAdd(thing, section))
                        {
                            failed++;
                        }
                    }
                }

                FleetIndexMetrics.WriteFailed.Add(failed);
                LogWriteFailed(_logger, ex, failed);
                throw;
            }
        }
        finally
        {
            _flushing.Release();
        }
    }

    private Task WriteAsync(string thingName, Func<IndexSection?> build)
    {
        try
        {
            return _store.WriteAsync(thingName, IndexPart.Shadow, build());
        }
        catch (Exception ex)
        {
            return Task.FromException(ex);
        }
    }

    /// <summary>
    /// Makes every node write what it holds (read-your-writes for a search); returns when all have. A node that does
    /// not answer within <see cref="FlushTimeout"/> (one dying before the cluster declares it dead) does not stop the
    /// search: what it held is the repair's, and the search goes on, counted and logged. So does a node of an earlier
    /// release during a rolling upgrade (it has no write-behind: it wrote its index parts before answering).
    /// </summary>
    public static async Task FlushEverywhereAsync(IGrainFactory grains, ILogger logger)
    {
        try
        {
            await grains.GetGrain<IManagementGrain>(0).SendControlCommandToProvider<IndexWriteBehind>(ControlName, FlushCommand).WaitAsync(FlushTimeout);
        }
        catch (Exception ex) when (ex is TimeoutException or SiloUnavailableException or OrleansMessageRejectionException or ArgumentException)
        {
            FleetIndexMetrics.FlushIncomplete.Add(1);
            LogFlushIncomplete(logger, ex);
        }
    }

    /// <summary>How long a search waits for the nodes to write what they hold.</summary>
    public static readonly TimeSpan FlushTimeout = TimeSpan.FromSeconds(5);

    public async Task<object?> ExecuteCommand(int command, object? arg)
    {
        if (command != FlushCommand)
        {
            throw new ArgumentOutOfRangeException(nameof(command), command, "Unknown command");
        }

        await FlushAsync();
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        // Registered twice (itself and as the controllable): the container disposes it once per registration.
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }

        await _stop.CancelAsync();
        await _loop;
        try
        {
            await FlushAsync();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Logged and counted by FlushAsync; the repair after a node's death rewrites them.
        }

        _stop.Dispose();
        _flushing.Dispose();
    }

    private async Task LoopAsync(TimeSpan interval, TimeProvider time)
    {
        await Task.Yield();
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(interval, time, _stop.Token);
                await FlushAsync();
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Kept for the next round; FlushAsync counted and logged it.
            }
        }
    }

    [LoggerMessage(EventId = 2407, Level = LogLevel.Warning, Message = "Not every node wrote its waiting shadow sections before a search; the search may miss updates a failing node acknowledged")]
    private static partial void LogFlushIncomplete(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2404, Level = LogLevel.Warning, Message = "Could not write {Count} shadow sections of the fleet index; they are written in the next round")]
    private static partial void LogWriteFailed(ILogger logger, Exception exception, int count);
}
