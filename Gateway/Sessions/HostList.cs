using Microsoft.Extensions.Logging;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Sessions;

/// <summary>
/// The client ids this node hosts (connected here, or persistent sessions offline here), written to its
/// <see cref="INodeSessionsGrain"/> in batches: what a live node adopts, and replays messages to, if this one dies.
/// </summary>
internal sealed partial class HostList(IGrainFactory grains, ILogger<HostList> logger)
{
    private readonly Lock _lock = new();
    private Dictionary<string, HostedSession?> _changes = new(StringComparer.Ordinal);

    /// <summary>Lists a client id (or, with null, takes it off the list) at the next write.</summary>
    public void Change(string clientId, HostedSession? entry)
    {
        lock (_lock)
        {
            _changes[clientId] = entry;
        }
    }

    /// <summary>Writes the changes since the last write; a failed write keeps them for the next.</summary>
    public async Task FlushAsync(string nodeId)
    {
        Dictionary<string, HostedSession?> changes;
        lock (_lock)
        {
            if (_changes.Count == 0)
            {
                return;
            }

            changes = _changes;
            _changes = new(StringComparer.Ordinal);
        }

        try
        {
            await grains.GetGrain<INodeSessionsGrain>(nodeId).Update(
                [.. changes.Values.OfType<HostedSession>()],
                [.. changes.Where(c => c.Value is null).Select(c => c.Key)]);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogListFailed(logger, ex);
            lock (_lock)
            {
                foreach (var (clientId, entry) in changes)
                {
                    _changes.TryAdd(clientId, entry);   // newer changes win
                }
            }
        }
    }

    [LoggerMessage(EventId = 1047, Level = LogLevel.Warning, Message = "Sessions: could not write the list of client ids this node hosts; it is kept for the next write")]
    private static partial void LogListFailed(ILogger logger, Exception exception);
}
