using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Registry;

namespace OrleansIot.Grains.FleetIndex;

/// <summary>Searches and aggregations: checks the request (AWS's limits and error names), then asks the store.</summary>
[GrainType("fleet-index"), Orleans.Concurrency.StatelessWorker]
internal sealed class FleetIndexGrain(IFleetIndexStore store, FleetIndexView view, IOptions<FleetIndexOptions> options, ILogger<FleetIndexGrain> logger) : Grain, IFleetIndexGrain
{
    public const string ThingIndex = "AWS_Things";
    private const int MaxResults = 500;
    private static readonly double[] DefaultPercents = [1, 5, 25, 50, 75, 95, 99];

    public async Task<IndexSearchPage> Search(string? indexName, string? queryString, string? nextToken, int? maxResults)
    {
        var max = maxResults ?? MaxResults;
        if (max is < 1 or > MaxResults)
        {
            throw ApiException.Invalid($"maxResults must be between 1 and {MaxResults}.");
        }

        var query = await QueryAsync(indexName, queryString);
        return await store.SearchAsync(query, RegistryPaging.After(nextToken), max);
    }

    public async Task<FleetStatistics> Statistics(string? indexName, string? queryString, string? aggregationField)
    {
        var (query, field) = await AggregationAsync(indexName, queryString, aggregationField ?? "registry.version");
        return await store.StatisticsAsync(query, field);
    }

    public async Task<long> Cardinality(string? indexName, string? queryString, string? aggregationField)
    {
        var (query, field) = await AggregationAsync(indexName, queryString, aggregationField ?? "registry.version");
        return await store.CardinalityAsync(query, field);
    }

    public async Task<IReadOnlyList<FleetPercentile>> Percentiles(string? indexName, string? queryString, string? aggregationField, IReadOnlyList<double>? percents)
    {
        var (query, field) = await AggregationAsync(indexName, queryString, aggregationField ?? "registry.version");
        percents = percents is null || percents.Count == 0 ? DefaultPercents : percents;
        if (percents.Any(p => p is < 0 or > 100 || double.IsNaN(p)) || percents.Count > 100)
        {
            throw IndexFieldNames.InvalidAggregation("Percents must be between 0 and 100 (at most 100 of them).");
        }

        return await store.PercentilesAsync(query, field, percents);
    }

    public async Task<IReadOnlyList<FleetBucket>> Buckets(string? indexName, string? queryString, string aggregationField, int? maxBuckets)
    {
        var max = maxBuckets ?? 10;
        if (max is < 1 or > 10_000)
        {
            throw IndexFieldNames.InvalidAggregation("maxBuckets must be between 1 and 10000.");
        }

        var (query, field) = await AggregationAsync(indexName, queryString, aggregationField);
        return await store.BucketsAsync(query, field, max);
    }

    private async Task<(FleetQuery Query, string Field)> AggregationAsync(string? indexName, string? queryString, string? field)
    {
        var query = await QueryAsync(indexName, queryString);
        if (string.IsNullOrEmpty(field))
        {
            throw IndexFieldNames.InvalidAggregation("aggregationField is required.");
        }

        try
        {
            IndexFieldNames.Check(field, (await view.CurrentAsync()).Configuration);
        }
        catch (ApiException e)
        {
            throw IndexFieldNames.InvalidAggregation(e.Message);
        }

        return (query, field);
    }

    private async Task<FleetQuery> QueryAsync(string? indexName, string? queryString)
    {
        if (indexName is not null && indexName != ThingIndex)
        {
            throw ApiException.NotFound($"Index {indexName} cannot be found; the thing index is {ThingIndex}.");
        }

        var configuration = (await view.CurrentAsync()).Configuration;
        if (!configuration.Registry)
        {
            throw new ApiException(400, "IndexNotReadyException", "The thing index is off (thingIndexingMode OFF); turn it on with UpdateIndexingConfiguration.");
        }

        var query = FleetQuery.Parse(queryString, options.Value.Limits);
        IndexFieldNames.Check(query, configuration);

        // Read your writes: every node writes the shadow sections it holds before the store is asked.
        await IndexWriteBehind.FlushEverywhereAsync(GrainFactory, logger);
        return query;
    }
}

/// <summary>
/// The index's settings and upkeep, one for the cluster: the configuration, the dynamic groups' queries, rebuilds.
/// Rebuilds run on a timer that interleaves, so the settings stay readable meanwhile.
/// </summary>
[GrainType("fleet-index-admin")]
internal sealed partial class FleetIndexAdminGrain(
    [PersistentState("fleet-index", StorageNames.Default)] IPersistentState<FleetIndexAdminState> state,
    IRegistryStore registry,
    IFleetIndexStore store,
    FleetIndexView view,
    IOptions<FleetIndexOptions> options,
    IClusterMembershipService membership,
    TimeProvider time,
    ILogger<FleetIndexAdminGrain> logger) : Grain, IFleetIndexAdminGrain
{
    private Task<long>? _rebuild;
    private IGrainTimer? _rebuildTimer;
    private IGrainTimer? _repairTimer;
    private HashSet<SiloAddress> _dead = [];
    private bool _repairDue = true;   // at activation: this grain's previous node may be the one that died

    private static readonly TimeSpan RepairCheck = TimeSpan.FromSeconds(5);
    private readonly Dictionary<string, IGrainTimer> _recheck = [];

    private FleetIndexAdminState S => state.State;

    private IndexingConfiguration Configuration => S.Configuration ?? IndexingConfiguration.Default;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // The first time the cluster runs with an index (a new installation, or one that had things before the index
        // existed), build it from the sources of truth.
        if (S.LastRebuildAt is null)
        {
            StartRebuild(TimeSpan.Zero);
        }

        _dead = DeadSilos();
        // Membership is read from this node's copy: a look every few seconds costs nothing.
        var every = options.Value.WriteBehind > RepairCheck ? options.Value.WriteBehind : RepairCheck;
        _repairTimer = this.RegisterGrainTimer(static (grain, _) => grain.RepairIfANodeDiedAsync(), this,
            new GrainTimerCreationOptions(every, every) { Interleave = true, KeepAlive = true });
        return base.OnActivateAsync(cancellationToken);
    }

    public Task<IndexingConfiguration> GetConfiguration() => Task.FromResult(Configuration);

    public async Task UpdateConfiguration(IndexingConfiguration configuration)
    {
        Check(configuration);
        S.Configuration = configuration;
        S.Version++;
        await state.WriteStateAsync();
        view.Invalidate();

        // Every node must hold the new configuration before things are reindexed with it. Off: nothing to write (the
        // entries stay until the index is turned on again, which rebuilds it).
        if (configuration.Registry)
        {
            StartRebuild(options.Value.SettingsRefresh * 2);
        }
    }

    public Task<FleetIndexSnapshot> Snapshot() => Task.FromResult(new FleetIndexSnapshot(
        Configuration,
        [.. S.DynamicGroups.OrderBy(g => g.Key, StringComparer.Ordinal).Select(g => new DynamicGroupQuery(g.Key, g.Value))],
        S.Version));

    public Task<IndexDescription> Describe() => Task.FromResult(new IndexDescription(
        FleetIndexGrain.ThingIndex,
        _rebuild is { IsCompleted: false } ? "REBUILDING" : "ACTIVE",
        (Configuration.Shadow ? "REGISTRY_AND_SHADOW" : "REGISTRY") + (Configuration.Connectivity ? "_AND_CONNECTIVITY_STATUS" : ""),
        S.LastRebuildCount,
        S.LastRebuildAt));

    public Task Rebuild()
    {
        StartRebuild(TimeSpan.Zero);
        return Task.CompletedTask;
    }

    public async Task<long> RebuildAndWait()
    {
        StartRebuild(TimeSpan.Zero);
        return await _rebuild!;
    }

    public async Task SetDynamicGroup(DynamicGroupQuery group)
    {
        if (!S.DynamicGroups.ContainsKey(group.ThingGroupName) && S.DynamicGroups.Count >= options.Value.MaxDynamicGroups)
        {
            throw ApiException.LimitExceeded($"There are already {options.Value.MaxDynamicGroups} dynamic thing groups, the most allowed.");
        }

        S.DynamicGroups[group.ThingGroupName] = group.QueryString;
        S.Version++;
        await state.WriteStateAsync();
        view.Invalidate();
        await ReconcileAsync(group);

        // A node that had not read the new query yet may have indexed a change without it: check once more when
        // every node has it.
        if (_recheck.Remove(group.ThingGroupName, out var earlier))
        {
            earlier.Dispose();
        }

        _recheck[group.ThingGroupName] = this.RegisterGrainTimer(
            static (g, _) => g.Grain.RecheckAsync(g.Group),
            (Grain: this, Group: group),
            new GrainTimerCreationOptions(options.Value.SettingsRefresh * 2, Timeout.InfiniteTimeSpan) { Interleave = true, KeepAlive = true });
    }

    public async Task RemoveDynamicGroup(string thingGroupName)
    {
        if (S.DynamicGroups.Remove(thingGroupName))
        {
            S.Version++;
            await state.WriteStateAsync();
            view.Invalidate();
        }
    }

    /// <summary>AWS's values for the modes, at most 10 valid named shadows, custom fields with a name and a type.</summary>
    private static void Check(IndexingConfiguration c)
    {
        static void OneOf(string value, string name, params string[] allowed)
        {
            if (!allowed.Contains(value))
            {
                throw ApiException.Invalid($"{name} must be one of {string.Join(", ", allowed)}, not {value}.");
            }
        }

        OneOf(c.ThingIndexingMode, "thingIndexingMode", "OFF", "REGISTRY", "REGISTRY_AND_SHADOW");
        OneOf(c.ThingConnectivityIndexingMode, "thingConnectivityIndexingMode", "OFF", "STATUS");
        OneOf(c.NamedShadowIndexingMode, "namedShadowIndexingMode", "OFF", "ON");
        if (c.NamedShadowNames.Count > 10 || c.NamedShadowNames.Any(n => !Abstractions.Things.ThingNames.IsValidShadowName(n)))
        {
            throw ApiException.Invalid("filter.namedShadowNames holds at most 10 valid shadow names.");
        }

        if (c.CustomFields.Any(f => f.Type is not ("Number" or "String" or "Boolean") || string.IsNullOrEmpty(f.Name)))
        {
            throw ApiException.Invalid("A custom field needs a name and a type of Number, String or Boolean.");
        }
    }

    private async Task RecheckAsync(DynamicGroupQuery group)
    {
        _recheck.Remove(group.ThingGroupName);
        if (S.DynamicGroups.TryGetValue(group.ThingGroupName, out var query) && query == group.QueryString)
        {
            await ReconcileAsync(group);
        }
    }

    /// <summary>Every thing that matches the group's query or is a member asks itself whether it belongs.</summary>
    private async Task ReconcileAsync(DynamicGroupQuery group)
    {
        var query = FleetIndexView.ParseStored(group.QueryString);
        var names = new HashSet<string>(StringComparer.Ordinal);
        await IndexWriteBehind.FlushEverywhereAsync(GrainFactory, logger);
        string? after = null;
        do
        {
            var page = await store.SearchAsync(query, after, 500);
            names.UnionWith(page.Things.Select(t => t.ThingName));
            after = page.NextToken is null ? null : page.Things[^1].ThingName;
        }
        while (after is not null);

        string? token = null;
        do
        {
            var members = await registry.ListMembersAsync(group.ThingGroupName, false, token, 250);
            names.UnionWith(members.Items);
            token = members.NextToken;
        }
        while (token is not null);

        await ForEachAsync(names, name => GrainFactory.GetGrain<IThingGrain>(name).SyncDynamicGroup(group));
    }

    private void StartRebuild(TimeSpan delay)
    {
        if (_rebuild is { IsCompleted: false })
        {
            S.RebuildAgain = true;
            return;
        }

        var started = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        _rebuild = started.Task;
        _rebuildTimer?.Dispose();
        _rebuildTimer = this.RegisterGrainTimer(
            static async (s, _) =>
            {
                try
                {
                    s.Done.TrySetResult(await s.Grain.RebuildAsync());
                }
                catch (Exception e)
                {
                    s.Done.TrySetException(e);
                }
            },
            (Grain: this, Done: started),
            new GrainTimerCreationOptions(delay, Timeout.InfiniteTimeSpan) { Interleave = true, KeepAlive = true });
    }

    private HashSet<SiloAddress> DeadSilos() =>
        [.. membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Dead).Select(m => m.SiloAddress)];

    /// <summary>
    /// A node that died lost the shadow sections it held in its write-behind (up to <see cref="FleetIndexOptions.WriteBehind"/>
    /// of updates): the things whose shadows are newer than their entries reindex themselves.
    /// </summary>
    private async Task RepairIfANodeDiedAsync()
    {
        var dead = DeadSilos();
        _repairDue |= dead.Except(_dead).Any();
        _dead = dead;
        if (!_repairDue || !Configuration.Registry || _rebuild is { IsCompleted: false })
        {
            return;
        }

        try
        {
            var stale = await store.ShadowsNewerThanEntriesAsync();
            await ForEachAsync(stale, name => GrainFactory.GetGrain<IThingGrain>(name).Reindex());
            _repairDue = false;
            if (stale.Count > 0)
            {
                FleetIndexMetrics.Repaired.Add(stale.Count);
                LogRepaired(logger, stale.Count);
            }
        }
        catch (Exception e) when (e is not OperationCanceledException)
        {
            LogRepairFailed(logger, e);   // tried again at the next tick
        }
    }

    /// <summary>Every registered thing and every thing in the index reindexes itself (an unregistered one removes its entry).</summary>
    private async Task<long> RebuildAsync()
    {
        var started = time.GetUtcNow();
        long count;
        do
        {
            S.RebuildAgain = false;
            var names = new HashSet<string>(StringComparer.Ordinal);
            string? token = null;
            do
            {
                var page = await registry.ListThingsAsync(new ThingQuery(null, null, false, null, token, 250));
                names.UnionWith(page.Items.Select(t => t.ThingName));
                token = page.NextToken;
            }
            while (token is not null);

            count = names.Count;
            string? after = null;
            do
            {
                var page = await store.NamesAsync(after, 1000);
                names.UnionWith(page.Items);
                after = page.NextToken is null ? null : page.Items[^1];
            }
            while (after is not null);

            await ForEachAsync(names, name => GrainFactory.GetGrain<IThingGrain>(name).Reindex());
        }
        while (S.RebuildAgain);

        S.LastRebuildAt = time.GetUtcNow();
        S.LastRebuildCount = count;
        await state.WriteStateAsync();
        LogRebuilt(logger, count, (S.LastRebuildAt.Value - started).TotalSeconds);
        return count;
    }

    private async Task ForEachAsync(IEnumerable<string> names, Func<string, Task> call)
    {
        using var gate = new SemaphoreSlim(options.Value.RebuildParallelism);
        var failures = 0;
        await Task.WhenAll(names.Select(async name =>
        {
            await gate.WaitAsync();
            try
            {
                await call(name);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                if (Interlocked.Increment(ref failures) == 1)
                {
                    LogReindexFailed(logger, e, name);
                }
            }
            finally
            {
                gate.Release();
            }
        }));

        if (failures > 0)
        {
            throw new InvalidOperationException($"{failures} things could not be reindexed; the first failure is logged.");
        }
    }

    [LoggerMessage(EventId = 2401, Level = LogLevel.Information, Message = "Rebuilt the thing index: {Count} registered things in {Seconds:F1} s")]
    private static partial void LogRebuilt(ILogger logger, long count, double seconds);

    [LoggerMessage(EventId = 2405, Level = LogLevel.Information, Message = "Repaired the thing index after a node's death: {Count} things whose shadows were newer than their entries reindexed")]
    private static partial void LogRepaired(ILogger logger, int count);

    [LoggerMessage(EventId = 2406, Level = LogLevel.Warning, Message = "Could not repair the thing index after a node's death; trying again shortly")]
    private static partial void LogRepairFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 2402, Level = LogLevel.Warning, Message = "Could not reindex thing {ThingName}")]
    private static partial void LogReindexFailed(ILogger logger, Exception exception, string thingName);
}

[GenerateSerializer, Alias("OrleansIot.FleetIndexAdminState")]
public sealed class FleetIndexAdminState
{
    [Id(0)] public IndexingConfiguration? Configuration { get; set; }
    [Id(1)] public Dictionary<string, string> DynamicGroups { get; set; } = new(StringComparer.Ordinal);
    [Id(2)] public long Version { get; set; }
    [Id(3)] public DateTimeOffset? LastRebuildAt { get; set; }
    [Id(4)] public long LastRebuildCount { get; set; }
    [Id(5)] public bool RebuildAgain { get; set; }
}

/// <summary>The embedded default's thing index: one grain holding a <see cref="MemoryFleetIndex"/>, alive while the cluster runs.</summary>
[Alias("OrleansIot.IEmbeddedFleetIndexGrain")]
public interface IEmbeddedFleetIndexGrain : IGrainWithIntegerKey
{
    [Alias("Write")]
    Task Write(string thingName, IReadOnlyList<IndexPartWrite> parts);

    [Alias("WriteConnectivity")]
    Task WriteConnectivity(IReadOnlyList<ConnectivityIndexWrite> writes);

    [Alias("Remove")]
    Task Remove(string thingName);

    [Alias("Search")]
    Task<IndexSearchPage> Search(string query, string? after, int maxResults);

    [Alias("Statistics")]
    Task<FleetStatistics> Statistics(string query, string field);

    [Alias("Cardinality")]
    Task<long> Cardinality(string query, string field);

    [Alias("Percentiles")]
    Task<IReadOnlyList<FleetPercentile>> Percentiles(string query, string field, IReadOnlyList<double> percents);

    [Alias("Buckets")]
    Task<IReadOnlyList<FleetBucket>> Buckets(string query, string field, int maxBuckets);

    [Alias("Names")]
    Task<RegistryPage<string>> Names(string? after, int maxResults);
}

/// <summary>
/// Kept in memory only and never collected (<see cref="KeepAliveAttribute"/>): like all embedded state it is lost
/// when the cluster stops, and a rebuild makes it again from the things.
/// </summary>
[GrainType("embedded-fleet-index"), KeepAlive]
internal sealed class EmbeddedFleetIndexGrain : Grain, IEmbeddedFleetIndexGrain
{
    private readonly MemoryFleetIndex _index = new();

    public Task Write(string thingName, IReadOnlyList<IndexPartWrite> parts)
    {
        foreach (var write in parts)
        {
            _index.Write(thingName, write.Part, write.Section);
        }

        return Task.CompletedTask;
    }

    public Task WriteConnectivity(IReadOnlyList<ConnectivityIndexWrite> writes)
    {
        foreach (var write in writes)
        {
            _index.WriteIfRegistered(write.ThingName, IndexPart.Connectivity, write.Section);
        }

        return Task.CompletedTask;
    }

    public Task Remove(string thingName)
    {
        _index.Remove(thingName);
        return Task.CompletedTask;
    }

    public Task<IndexSearchPage> Search(string query, string? after, int maxResults) => Task.FromResult(_index.Search(FleetIndexView.ParseStored(query), after, maxResults));

    public Task<FleetStatistics> Statistics(string query, string field) => Task.FromResult(_index.Statistics(FleetIndexView.ParseStored(query), field));

    public Task<long> Cardinality(string query, string field) => Task.FromResult(_index.Cardinality(FleetIndexView.ParseStored(query), field));

    public Task<IReadOnlyList<FleetPercentile>> Percentiles(string query, string field, IReadOnlyList<double> percents) =>
        Task.FromResult(_index.Percentiles(FleetIndexView.ParseStored(query), field, percents));

    public Task<IReadOnlyList<FleetBucket>> Buckets(string query, string field, int maxBuckets) => Task.FromResult(_index.Buckets(FleetIndexView.ParseStored(query), field, maxBuckets));

    public Task<RegistryPage<string>> Names(string? after, int maxResults) => Task.FromResult(_index.Names(after, maxResults));
}

/// <summary>The embedded store as <see cref="IFleetIndexStore"/>: every call goes to the one index grain.</summary>
public sealed class EmbeddedFleetIndexStore(IGrainFactory grains) : IFleetIndexStore
{
    private IEmbeddedFleetIndexGrain Index => grains.GetGrain<IEmbeddedFleetIndexGrain>(0);

    public Task WriteAsync(string thingName, IReadOnlyList<IndexPartWrite> parts) => Index.Write(thingName, parts);

    public Task WriteConnectivityAsync(IReadOnlyList<ConnectivityIndexWrite> writes) => Index.WriteConnectivity(writes);

    public Task RemoveAsync(string thingName) => Index.Remove(thingName);

    public Task<IndexSearchPage> SearchAsync(FleetQuery query, string? afterThingName, int maxResults) => Index.Search(query.Text, afterThingName, maxResults);

    public Task<FleetStatistics> StatisticsAsync(FleetQuery query, string field) => Index.Statistics(query.Text, field);

    public Task<long> CardinalityAsync(FleetQuery query, string field) => Index.Cardinality(query.Text, field);

    public Task<IReadOnlyList<FleetPercentile>> PercentilesAsync(FleetQuery query, string field, IReadOnlyList<double> percents) => Index.Percentiles(query.Text, field, percents);

    public Task<IReadOnlyList<FleetBucket>> BucketsAsync(FleetQuery query, string field, int maxBuckets) => Index.Buckets(query.Text, field, maxBuckets);

    public Task<RegistryPage<string>> NamesAsync(string? afterThingName, int maxResults) => Index.Names(afterThingName, maxResults);
}
