using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Jobs;

namespace OrleansIot.Grains.Jobs;

/// <summary>A change of one thing's execution as the job learns it (from the thing's report or a call's answer).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobThingChange")]
internal sealed record JobThingChange(
    [property: Id(0)] string ThingName,
    [property: Id(1)] long ExecutionNumber,
    [property: Id(2)] long VersionNumber,
    [property: Id(3)] string Status,
    [property: Id(4)] DateTimeOffset? QueuedAt,
    [property: Id(5)] DateTimeOffset At);

/// <summary>What a change did to the counts: a thing left one state (null: it was new) for another (null: it was removed).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.JobCountDelta")]
internal sealed record JobCountDelta([property: Id(0)] string? From, [property: Id(1)] string? To);

/// <summary>
/// One of a job's <see cref="Shards"/> slices of its things' newest execution states, keyed <c>{jobId}/{shard}</c>.
/// A job's state would otherwise hold an entry per thing and be written whole for every report; a slice is small,
/// written alone, and the job keeps only the counts, rebuilt from its slices when it activates.
/// </summary>
[Alias("OrleansIot.IJobShardGrain")]
internal interface IJobShardGrain : IGrainWithStringKey
{
    public const int Shards = 64;

    /// <summary>The slice a thing's entry is in (a stable hash: the same slice on every node and run).</summary>
    public static string KeyOf(string jobId, string thingName)
    {
        var hash = 2166136261u;
        foreach (var c in thingName)
        {
            hash = (hash ^ c) * 16777619u;
        }

        return $"{jobId}/{hash % Shards}";
    }

    /// <summary>Keeps the newest state of each thing (a higher execution number, else a higher version); returns what changed.</summary>
    [Alias("Merge")]
    Task<IReadOnlyList<JobCountDelta>> Merge(IReadOnlyList<JobThingChange> changes);

    /// <summary>The number of things in each state.</summary>
    [Alias("Counts"), Orleans.Concurrency.ReadOnly]
    Task<Dictionary<string, int>> Counts();

    /// <summary>Things in ordinal order after <paramref name="after"/>, optionally of one state.</summary>
    [Alias("Page"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<JobThingStatus>> Page(string? status, string? after, int max);

    /// <summary>The things whose executions are in one of the states.</summary>
    [Alias("ThingsIn"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<string>> ThingsIn(IReadOnlyList<string> statuses);

    /// <summary>One thing's entry, or <c>null</c>.</summary>
    [Alias("Get"), Orleans.Concurrency.ReadOnly]
    Task<JobThingStatus?> Get(string thingName);

    /// <summary>Forgets a thing's entry (its execution was deleted) unless a newer execution replaced it.</summary>
    [Alias("Remove")]
    Task<JobCountDelta?> Remove(string thingName, long executionNumber);

    /// <summary>Every thing of the slice (for deleting the job).</summary>
    [Alias("All"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<string>> All();

    /// <summary>Forgets the slice.</summary>
    [Alias("Clear")]
    Task Clear();
}

[GrainType("job-shard")]
internal sealed class JobShardGrain(
    [PersistentState("job-shard", StorageNames.Default)] IPersistentState<JobShardState> state) : Grain, IJobShardGrain
{
    public async Task<IReadOnlyList<JobCountDelta>> Merge(IReadOnlyList<JobThingChange> changes)
    {
        var deltas = new List<JobCountDelta>();
        var changed = false;
        foreach (var c in changes)
        {
            if (state.State.Things.TryGetValue(c.ThingName, out var entry)
                && (entry.ExecutionNumber > c.ExecutionNumber || (entry.ExecutionNumber == c.ExecutionNumber && entry.VersionNumber >= c.VersionNumber)))
            {
                continue;
            }

            var from = entry?.Status;
            changed = true;
            entry ??= state.State.Things[c.ThingName] = new JobThingEntry();
            if (entry.ExecutionNumber != c.ExecutionNumber)
            {
                entry.QueuedAt = c.QueuedAt ?? c.At;
            }

            entry.ExecutionNumber = c.ExecutionNumber;
            entry.VersionNumber = c.VersionNumber;
            entry.Status = c.Status;
            entry.LastUpdatedAt = c.At;
            if (from != c.Status)
            {
                deltas.Add(new JobCountDelta(from, c.Status));
            }
        }

        if (changed)
        {
            await state.WriteStateAsync();
        }

        return deltas;
    }

    public Task<Dictionary<string, int>> Counts() =>
        Task.FromResult(state.State.Things.Values.GroupBy(t => t.Status).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal));

    public Task<IReadOnlyList<JobThingStatus>> Page(string? status, string? after, int max) =>
        Task.FromResult<IReadOnlyList<JobThingStatus>>([.. state.State.Things
            .Where(t => (status is null || t.Value.Status == status) && (after is null || string.CompareOrdinal(t.Key, after) > 0))
            .OrderBy(t => t.Key, StringComparer.Ordinal)
            .Take(max)
            .Select(t => new JobThingStatus(t.Key, t.Value.Status, t.Value.ExecutionNumber, t.Value.QueuedAt, t.Value.LastUpdatedAt))]);

    public Task<IReadOnlyList<string>> ThingsIn(IReadOnlyList<string> statuses) =>
        Task.FromResult<IReadOnlyList<string>>([.. state.State.Things.Where(t => statuses.Contains(t.Value.Status)).Select(t => t.Key)]);

    public Task<JobThingStatus?> Get(string thingName) =>
        Task.FromResult(state.State.Things.TryGetValue(thingName, out var t) ? new JobThingStatus(thingName, t.Status, t.ExecutionNumber, t.QueuedAt, t.LastUpdatedAt) : null);

    public async Task<JobCountDelta?> Remove(string thingName, long executionNumber)
    {
        if (!state.State.Things.TryGetValue(thingName, out var entry) || entry.ExecutionNumber > executionNumber)
        {
            return null;
        }

        state.State.Things.Remove(thingName);
        await state.WriteStateAsync();
        return new JobCountDelta(entry.Status, null);
    }

    public Task<IReadOnlyList<string>> All() => Task.FromResult<IReadOnlyList<string>>([.. state.State.Things.Keys]);

    public async Task Clear()
    {
        await state.ClearStateAsync();
        state.State = new JobShardState();
    }
}

[GenerateSerializer, Alias("OrleansIot.JobShardState")]
public sealed class JobShardState
{
    [Id(0)] public Dictionary<string, JobThingEntry> Things { get; set; } = new(StringComparer.Ordinal);
}
