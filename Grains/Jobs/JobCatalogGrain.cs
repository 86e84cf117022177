using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Jobs;

namespace OrleansIot.Grains.Jobs;

/// <summary>
/// One grain for the whole installation: job ids with the groups and artifacts each refers to. Small (AWS allows
/// 100 active jobs of each kind) and written only when a job starts, finishes or is deleted.
/// </summary>
[GrainType("job-catalog")]
internal sealed class JobCatalogGrain(
    [PersistentState("jobs", StorageNames.Default)] IPersistentState<JobCatalogState> state) : Grain, IJobCatalogGrain
{
    public async Task Add(string jobId, IReadOnlyList<string> groups, IReadOnlyList<string> artifacts, bool continuous)
    {
        state.State.Jobs[jobId] = new JobCatalogEntry { Groups = [.. groups], Artifacts = [.. artifacts], Continuous = continuous, Active = true };
        await state.WriteStateAsync();
    }

    public async Task Remove(string jobId)
    {
        if (state.State.Jobs.Remove(jobId))
        {
            await state.WriteStateAsync();
        }
    }

    public async Task Finished(string jobId)
    {
        if (state.State.Jobs.TryGetValue(jobId, out var entry) && entry.Active)
        {
            entry.Active = false;
            await state.WriteStateAsync();
        }
    }

    public Task<JobPage<string>> Page(string? thingGroupName, string? marker, int pageSize)
    {
        var after = state.State.Jobs
            .Where(j => (marker is null || string.CompareOrdinal(j.Key, marker) > 0) && (thingGroupName is null || j.Value.Groups.Contains(thingGroupName)))
            .Select(j => j.Key)
            .Order(StringComparer.Ordinal)
            .Take(pageSize + 1)
            .ToList();
        return Task.FromResult(after.Count > pageSize ? new JobPage<string>(after[..pageSize], after[pageSize - 1]) : new JobPage<string>(after, null));
    }

    public Task<IReadOnlyList<string>> Following(IReadOnlyList<string> groups) =>
        Task.FromResult<IReadOnlyList<string>>([.. state.State.Jobs
            .Where(j => j.Value is { Active: true, Continuous: true } && j.Value.Groups.Overlaps(groups))
            .Select(j => j.Key)
            .Order(StringComparer.Ordinal)]);

    public Task<IReadOnlyList<string>> Referencing(string artifactId) =>
        Task.FromResult<IReadOnlyList<string>>([.. state.State.Jobs
            .Where(j => j.Value.Active && j.Value.Artifacts.Contains(artifactId))
            .Select(j => j.Key)
            .Order(StringComparer.Ordinal)]);
}

[GenerateSerializer, Alias("OrleansIot.JobCatalogState")]
public sealed class JobCatalogState
{
    [Id(0)] public Dictionary<string, JobCatalogEntry> Jobs { get; set; } = new(StringComparer.Ordinal);
}

[GenerateSerializer, Alias("OrleansIot.JobCatalogEntry")]
public sealed class JobCatalogEntry
{
    [Id(0)] public HashSet<string> Groups { get; set; } = [];
    [Id(1)] public HashSet<string> Artifacts { get; set; } = [];
    [Id(2)] public bool Continuous { get; set; }
    [Id(3)] public bool Active { get; set; }
}
