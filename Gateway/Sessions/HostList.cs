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
/// <para>
/// A shard is still written whole, and while a fleet connects every shard changes at every flush. So the changes of
/// clean connections without a will (<c>urgent: false</c>: nothing is replayed or adopted for them, the list only lets
/// the adopter record their lost connections) wait for every <see cref="LazyFlushes"/>th write unless their shard is
/// written anyway; sessions that a replay or an adoption needs are written at the next flush.
/// </para>
/// </summary>
internal sealed partial class HostList(IGrainFactory grains, ILogger<HostList> logger)
{
    /// <summary>A shard with only clean connections' changes is written at every this many flushes.</summary>
    public const int LazyFlushes = 5;

    private readonly Lock _lock = new();
    private Dictionary<string, (HostedSession? Entry, bool Urgent)> _changes = new(StringComparer.Ordinal);

    /// <summary>
    /// Lists a client id (or, with null, takes it off the list) at the next write, or, not <paramref name="urgent"/>,
    /// at the next write of its shard (at most <see cref="LazyFlushes"/> writes later).
    /// </summary>
    public void Change(string clientId, HostedSession? entry, bool urgent = true)
    {
        lock (_lock)
        {
            _changes[clientId] = (entry, urgent || (_changes.TryGetValue(clientId, out var pending) && pending.Urgent));
        }
    }

    /// <summary>
    /// Writes the changes since the last write, shard by shard: the shards with an urgent change, or, with
    /// <paramref name="all"/>, every shard that changed. A failed shard's changes are kept for the next write.
    /// </summary>
    public async Task FlushAsync(string nodeId, bool all = true)
    {
        List<IGrouping<long, KeyValuePair<string, (HostedSession? Entry, bool Urgent)>>> shards;
        lock (_lock)
        {
            if (_changes.Count == 0)
            {
                return;
            }

            var changes = _changes;
            _changes = new(StringComparer.Ordinal);
            shards = [.. changes.GroupBy(c => ConnectionDirectory.PartitionOf(c.Key))];
            if (!all)
            {
                foreach (var waiting in shards.Where(s => !s.Any(c => c.Value.Urgent)))
                {
                    foreach (var (clientId, change) in waiting)
                    {
                        _changes[clientId] = change;
                    }
                }

                shards.RemoveAll(s => !s.Any(c => c.Value.Urgent));
            }
        }

        await Task.WhenAll(shards.Select(async shard =>
        {
            try
            {
                await grains.Reference<INodeSessionsGrain>(ShardKey(nodeId, shard.Key)).Update(
                    [.. shard.Select(c => c.Value.Entry).OfType<HostedSession>()],
                    [.. shard.Where(c => c.Value.Entry is null).Select(c => c.Key)]);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogListFailed(logger, ex);
                lock (_lock)
                {
                    foreach (var (clientId, change) in shard)
                    {
                        _changes.TryAdd(clientId, change);   // newer changes win
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
