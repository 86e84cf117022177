using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Sessions;

/// <summary>
/// Hands the ends of the connections a stopping node closes to their keepers (<see cref="IConnectionEndsGrain"/>)
/// instead of activating each thing during the stop. The node closes every connection at once, so the ends of one
/// keeper are grouped: while one batch is being stored, the next gathers, and each keeper sees a handful of calls and
/// state writes however many devices the node held.
/// <para>
/// A keeper whose silo stopped is activated again by its reminder within about a minute. Sooner where the cluster
/// goes on: every node wakes the keepers when it sees a silo leave, and those that went with it come back on a silo
/// that stays, and go on recording.
/// </para>
/// </summary>
internal sealed partial class EndKeeper(IGrainFactory grains, IClusterMembershipService membership, ILogger<EndKeeper> logger) : BackgroundService
{
    private readonly Lock _lock = new();
    private readonly Dictionary<long, Lane> _lanes = [];

    /// <summary>
    /// Gives <paramref name="closed"/> to the keeper of <paramref name="clientId"/>; when the keeper could not store
    /// it, records it on the thing at once (whose failure the caller sees).
    /// </summary>
    public async Task KeepAsync(string clientId, ConnectionClosed closed)
    {
        if (!await StoreLaterAsync(clientId, closed))
        {
            await grains.Reference<IThingGrain>(clientId).Disconnected(closed);
        }
    }

    /// <summary>Adds the end to its keeper's open batch: true once the batch is stored, false when it could not be.</summary>
    private Task<bool> StoreLaterAsync(string clientId, ConnectionClosed closed)
    {
        var partition = ConnectionDirectory.PartitionOf(clientId);
        Batch batch;
        var start = false;
        lock (_lock)
        {
            if (!_lanes.TryGetValue(partition, out var lane))
            {
                _lanes[partition] = lane = new Lane();
            }

            batch = lane.Open ??= new Batch();
            batch.Ends.Add(new KeptEnd(clientId, closed));
            if (!lane.Storing)
            {
                lane.Storing = start = true;
            }
        }

        if (start)
        {
            _ = StoreAsync(partition);
        }

        return batch.Stored.Task;
    }

    /// <summary>Stores a keeper's batches one after another until none is open.</summary>
    private async Task StoreAsync(long partition)
    {
        await Task.Yield();   // the disconnects closed together join the first batch
        while (true)
        {
            Batch? batch;
            lock (_lock)
            {
                var lane = _lanes[partition];
                batch = lane.Open;
                lane.Open = null;
                if (batch is null)
                {
                    lane.Storing = false;
                    return;
                }
            }

            try
            {
                await grains.Reference<IConnectionEndsGrain>(partition).Keep(batch.Ends);
                batch.Stored.TrySetResult(true);
            }
            catch (Exception ex)
            {
                LogKeepFailed(logger, ex, batch.Ends.Count, partition);
                batch.Stored.TrySetResult(false);
            }
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        HashSet<SiloAddress>? dead = null;
        try
        {
            await foreach (var snapshot in membership.MembershipUpdates.WithCancellation(stoppingToken))
            {
                var now = snapshot.Members.Values.Where(m => m.Status == SiloStatus.Dead).Select(m => m.SiloAddress).ToHashSet();
                if (dead is not null && now.Except(dead).Any())
                {
                    await WakeKeepersAsync(stoppingToken);
                }

                dead = now;
            }
        }
        catch (OperationCanceledException)
        {
            // stopping
        }
    }

    private async Task WakeKeepersAsync(CancellationToken cancellationToken) =>
        await Parallel.ForEachAsync(Enumerable.Range(0, ConnectionDirectory.Partitions), new ParallelOptions { MaxDegreeOfParallelism = 4, CancellationToken = cancellationToken }, async (partition, _) =>
        {
            try
            {
                await grains.Reference<IConnectionEndsGrain>(partition).Wake();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogWakeFailed(logger, ex, partition);   // its reminder brings it back
            }
        });

    private sealed class Lane
    {
        public Batch? Open;
        public bool Storing;
    }

    private sealed class Batch
    {
        public readonly List<KeptEnd> Ends = [];
        public readonly TaskCompletionSource<bool> Stored = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }

    [LoggerMessage(EventId = 1091, Level = LogLevel.Debug, Message = "Could not wake connection end keeper {Partition}")]
    private static partial void LogWakeFailed(ILogger logger, Exception exception, int partition);

    [LoggerMessage(EventId = 1090, Level = LogLevel.Warning, Message = "Could not keep {Count} connection ends with keeper {Partition}; they are recorded on their things at once")]
    private static partial void LogKeepFailed(ILogger logger, Exception exception, int count, long partition);
}
