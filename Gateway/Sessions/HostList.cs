using Microsoft.Extensions.Logging;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Sessions;

/// <summary>
/// The client ids this node hosts (connected here, or persistent sessions offline here), written to
/// <see cref="INodeSessionsGrain"/>s in batches: what a live node adopts, and replays messages to, if this one dies.
/// The list is split into shards (<see cref="ConnectionDirectory.Partitions"/> of them, by the same hash), each a
/// grain of its own: a write rewrites only the shards that changed. One grain per node rewrote the whole list on
/// every flush (every connect or disconnect on the node within a second): at 19,000 devices a row of about 2 MB a
/// second in PostgreSQL mode while a few devices reconnect.
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

    /// <summary>Writes the changes since the last write, shard by shard; a failed shard's changes are kept for the next write.</summary>
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

        await Task.WhenAll(changes.GroupBy(c => ConnectionDirectory.PartitionOf(c.Key)).Select(async shard =>
        {
            try
            {
                await grains.Reference<INodeSessionsGrain>(ShardKey(nodeId, shard.Key)).Update(
                    [.. shard.Select(c => c.Value).OfType<HostedSession>()],
                    [.. shard.Where(c => c.Value is null).Select(c => c.Key)]);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogListFailed(logger, ex);
                lock (_lock)
                {
                    foreach (var (clientId, entry) in shard)
                    {
                        _changes.TryAdd(clientId, entry);   // newer changes win
                    }
                }
            }
        }));
    }

    /// <summary>
    /// Everything a node listed at its last writes: its shards, and the single list a node of an earlier release wrote
    /// (a shard's entry wins over that one's).
    /// </summary>
    public static async Task<IReadOnlyList<HostedSession>> ReadAsync(IGrainFactory grains, string nodeId)
    {
        var lists = await Task.WhenAll(Keys(nodeId).Select(key => grains.Reference<INodeSessionsGrain>(key).Get()));
        var merged = new Dictionary<string, HostedSession>(StringComparer.Ordinal);
        foreach (var entry in lists.SelectMany(list => list))
        {
            merged[entry.ClientId] = entry;   // the earlier release's list comes first
        }

        return [.. merged.Values];
    }

    /// <summary>The node was adopted: all of its list goes.</summary>
    public static Task ClearAsync(IGrainFactory grains, string nodeId) =>
        Task.WhenAll(Keys(nodeId).Select(key => grains.Reference<INodeSessionsGrain>(key).Clear()));

    private static string ShardKey(string nodeId, long shard) => $"{nodeId}#{shard}";

    private static IEnumerable<string> Keys(string nodeId) =>
        [nodeId, .. Enumerable.Range(0, ConnectionDirectory.Partitions).Select(shard => ShardKey(nodeId, shard))];

    [LoggerMessage(EventId = 1047, Level = LogLevel.Warning, Message = "Sessions: could not write the list of client ids this node hosts; it is kept for the next write")]
    private static partial void LogListFailed(ILogger logger, Exception exception);
}
