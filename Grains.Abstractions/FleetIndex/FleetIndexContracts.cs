namespace OrleansIot.Grains.Abstractions.FleetIndex;

/// <summary>The parts of a thing's index entry, each written by what changes it.</summary>
public enum IndexPart
{
    /// <summary>Name, id, type, groups, attributes, version.</summary>
    Registry,

    /// <summary>The classic shadow and the named shadows the configuration selects.</summary>
    Shadow,

    /// <summary>Connected, since when, why it disconnected.</summary>
    Connectivity,
}

/// <summary>
/// One part of a thing's index entry: <see cref="Document"/> is what searches return (JSON), <see cref="Fields"/> the
/// searchable values by path (JSON: <c>{"path":[values…]}</c>, strings in lower case).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.IndexSection")]
public sealed record IndexSection(
    [property: Id(0)] string Document,
    [property: Id(1)] string Fields);

/// <summary>A part of a thing's entry to write; a <c>null</c> section clears the part.</summary>
/// <param name="Part">Which part.</param>
/// <param name="Section">Its new content.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.IndexPartWrite")]
public sealed record IndexPartWrite(
    [property: Id(0)] IndexPart Part,
    [property: Id(1)] IndexSection? Section);

/// <summary>A thing's connectivity part, as the connection directory writes it in batches (registered things only).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ConnectivityIndexWrite")]
public sealed record ConnectivityIndexWrite(
    [property: Id(0)] string ThingName,
    [property: Id(1)] IndexSection Section);

/// <summary>A thing as the index holds it: its parts' documents (JSON), <c>null</c> for a part not indexed.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.IndexedThingDocument")]
public sealed record IndexedThingDocument(
    [property: Id(0)] string ThingName,
    [property: Id(1)] string Registry,
    [property: Id(2)] string? Shadow,
    [property: Id(3)] string? Connectivity);

/// <summary>A page of search results in thing-name order.</summary>
/// <param name="Things">The matching things.</param>
/// <param name="NextToken">Where the next page starts; <c>null</c> on the last page.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.IndexSearchPage")]
public sealed record IndexSearchPage(
    [property: Id(0)] IReadOnlyList<IndexedThingDocument> Things,
    [property: Id(1)] string? NextToken);

/// <summary>AWS <c>GetStatistics</c>: numeric values give all figures; text values only a count.</summary>
/// <param name="Count">Values counted.</param>
/// <param name="Average">Their mean.</param>
/// <param name="Sum">Their sum.</param>
/// <param name="Minimum">The smallest.</param>
/// <param name="Maximum">The largest.</param>
/// <param name="SumOfSquares">The sum of their squares.</param>
/// <param name="Variance">Population variance.</param>
/// <param name="StdDeviation">Population standard deviation.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.FleetStatistics")]
public sealed record FleetStatistics(
    [property: Id(0)] long Count,
    [property: Id(1)] double? Average,
    [property: Id(2)] double? Sum,
    [property: Id(3)] double? Minimum,
    [property: Id(4)] double? Maximum,
    [property: Id(5)] double? SumOfSquares,
    [property: Id(6)] double? Variance,
    [property: Id(7)] double? StdDeviation);

/// <summary>One percentile of <c>GetPercentiles</c>.</summary>
/// <param name="Percent">0..100.</param>
/// <param name="Value">The value at that percent, interpolated linearly.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.FleetPercentile")]
public sealed record FleetPercentile(
    [property: Id(0)] double Percent,
    [property: Id(1)] double Value);

/// <summary>One bucket of <c>GetBucketsAggregation</c>.</summary>
/// <param name="KeyValue">The value (text in lower case, as indexed).</param>
/// <param name="Count">How often it occurs.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.FleetBucket")]
public sealed record FleetBucket(
    [property: Id(0)] string KeyValue,
    [property: Id(1)] long Count);

/// <summary>A custom field declared for aggregation (AWS <c>customFields</c>).</summary>
/// <param name="Name">The field, e.g. <c>attributes.model</c>.</param>
/// <param name="Type"><c>Number</c>, <c>String</c> or <c>Boolean</c>.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.IndexField")]
public sealed record IndexField(
    [property: Id(0)] string Name,
    [property: Id(1)] string Type);

/// <summary>
/// What the thing index holds (AWS <c>thingIndexingConfiguration</c>): <c>REGISTRY</c> or
/// <c>REGISTRY_AND_SHADOW</c> (or <c>OFF</c>), connectivity <c>STATUS</c> or <c>OFF</c>, named shadows <c>ON</c> for
/// the names listed (at most 10). Ours defaults to registry, classic shadow and connectivity indexed.
/// </summary>
/// <param name="ThingIndexingMode"><c>OFF</c>, <c>REGISTRY</c> or <c>REGISTRY_AND_SHADOW</c>.</param>
/// <param name="ThingConnectivityIndexingMode"><c>OFF</c> or <c>STATUS</c>.</param>
/// <param name="NamedShadowIndexingMode"><c>OFF</c> or <c>ON</c>.</param>
/// <param name="NamedShadowNames">The named shadows indexed when <paramref name="NamedShadowIndexingMode"/> is <c>ON</c>.</param>
/// <param name="CustomFields">Fields declared for aggregations (kept and returned; any indexed field aggregates).</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.IndexingConfiguration")]
public sealed record IndexingConfiguration(
    [property: Id(0)] string ThingIndexingMode,
    [property: Id(1)] string ThingConnectivityIndexingMode,
    [property: Id(2)] string NamedShadowIndexingMode,
    [property: Id(3)] IReadOnlyList<string> NamedShadowNames,
    [property: Id(4)] IReadOnlyList<IndexField> CustomFields)
{
    /// <summary>Registry, classic shadow and connectivity.</summary>
    public static IndexingConfiguration Default { get; } = new("REGISTRY_AND_SHADOW", "STATUS", "OFF", [], []);

    /// <summary>Whether the thing index is on at all.</summary>
    public bool Registry => ThingIndexingMode != "OFF";

    /// <summary>Whether shadows are indexed.</summary>
    public bool Shadow => ThingIndexingMode == "REGISTRY_AND_SHADOW";

    /// <summary>Whether connectivity is indexed.</summary>
    public bool Connectivity => Registry && ThingConnectivityIndexingMode == "STATUS";

    /// <summary>Whether the shadow of this name is indexed (<c>""</c>: the classic shadow).</summary>
    public bool IndexesShadow(string shadowName) =>
        Shadow && (shadowName.Length == 0 || (NamedShadowIndexingMode == "ON" && NamedShadowNames.Contains(shadowName)));
}

/// <summary>A dynamic thing group's query as every node evaluates it.</summary>
/// <param name="ThingGroupName">The group.</param>
/// <param name="QueryString">Its fleet-indexing query.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.DynamicGroupQuery")]
public sealed record DynamicGroupQuery(
    [property: Id(0)] string ThingGroupName,
    [property: Id(1)] string QueryString);

/// <summary>What every node caches of the index's settings: the configuration and the dynamic groups.</summary>
/// <param name="Configuration">What is indexed.</param>
/// <param name="DynamicGroups">Every dynamic group's query.</param>
/// <param name="Version">Grows with every change.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.FleetIndexSnapshot")]
public sealed record FleetIndexSnapshot(
    [property: Id(0)] IndexingConfiguration Configuration,
    [property: Id(1)] IReadOnlyList<DynamicGroupQuery> DynamicGroups,
    [property: Id(2)] long Version);

/// <summary>AWS <c>DescribeIndex</c>: <c>ACTIVE</c>, or <c>REBUILDING</c> while a rebuild runs.</summary>
/// <param name="IndexName"><c>AWS_Things</c>.</param>
/// <param name="IndexStatus"><c>ACTIVE</c> or <c>REBUILDING</c>.</param>
/// <param name="Schema">What is indexed, as AWS names it.</param>
/// <param name="ThingsIndexedByLastRebuild">Registered things the last rebuild indexed.</param>
/// <param name="LastRebuildCompletedAt">When it finished.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.IndexDescription")]
public sealed record IndexDescription(
    [property: Id(0)] string IndexName,
    [property: Id(1)] string IndexStatus,
    [property: Id(2)] string Schema,
    [property: Id(3)] long ThingsIndexedByLastRebuild,
    [property: Id(4)] DateTimeOffset? LastRebuildCompletedAt);

/// <summary>Searches and aggregations over the thing index (stateless: any silo answers, the store does the work).</summary>
[Alias("OrleansIot.IFleetIndexGrain")]
public interface IFleetIndexGrain : IGrainWithIntegerKey
{
    /// <summary>AWS <c>SearchIndex</c>: things matching the query in name order, at most <paramref name="maxResults"/> (1..500).</summary>
    [Alias("Search")]
    Task<IndexSearchPage> Search(string? indexName, string? queryString, string? nextToken, int? maxResults);

    /// <summary>AWS <c>GetStatistics</c> over <paramref name="aggregationField"/> (default <c>registry.version</c>).</summary>
    [Alias("Statistics")]
    Task<FleetStatistics> Statistics(string? indexName, string? queryString, string? aggregationField);

    /// <summary>AWS <c>GetCardinality</c>: the number of distinct values.</summary>
    [Alias("Cardinality")]
    Task<long> Cardinality(string? indexName, string? queryString, string? aggregationField);

    /// <summary>AWS <c>GetPercentiles</c> (default percents 1, 5, 25, 50, 75, 95, 99), interpolated linearly.</summary>
    [Alias("Percentiles")]
    Task<IReadOnlyList<FleetPercentile>> Percentiles(string? indexName, string? queryString, string? aggregationField, IReadOnlyList<double>? percents);

    /// <summary>AWS <c>GetBucketsAggregation</c> (terms): the most frequent values with their counts.</summary>
    [Alias("Buckets")]
    Task<IReadOnlyList<FleetBucket>> Buckets(string? indexName, string? queryString, string aggregationField, int? maxBuckets);
}

/// <summary>
/// The index's settings and upkeep (one per cluster): the indexing configuration, the dynamic groups' queries and
/// rebuilds. Nodes cache <see cref="Snapshot"/> for a short while; nothing here is on a device's path.
/// </summary>
[Alias("OrleansIot.IFleetIndexAdminGrain")]
public interface IFleetIndexAdminGrain : IGrainWithIntegerKey
{
    /// <summary>AWS <c>GetIndexingConfiguration</c>.</summary>
    [Alias("GetConfiguration")]
    Task<IndexingConfiguration> GetConfiguration();

    /// <summary>AWS <c>UpdateIndexingConfiguration</c>: stores it and rebuilds the index with it.</summary>
    [Alias("UpdateConfiguration")]
    Task UpdateConfiguration(IndexingConfiguration configuration);

    /// <summary>The settings nodes cache.</summary>
    [Alias("Snapshot"), Orleans.Concurrency.AlwaysInterleave]
    Task<FleetIndexSnapshot> Snapshot();

    /// <summary>AWS <c>DescribeIndex</c>.</summary>
    [Alias("Describe"), Orleans.Concurrency.AlwaysInterleave]
    Task<IndexDescription> Describe();

    /// <summary>Rebuilds the index from the sources of truth (every registered thing and every indexed one); returns at once.</summary>
    [Alias("Rebuild")]
    Task Rebuild();

    /// <summary>
    /// Rebuilds and completes when done; returns the number of things indexed. Longer than a grain call's 30 s: 102,384
    /// things took 157 s (docs/benchmarks.md), and 10,000 on a busy machine took more than 30 s.
    /// </summary>
    [Alias("RebuildAndWait"), ResponseTimeout("00:30:00")]
    Task<long> RebuildAndWait();

    /// <summary>Adds or changes a dynamic group's query (at most 100 dynamic groups).</summary>
    [Alias("SetDynamicGroup")]
    Task SetDynamicGroup(DynamicGroupQuery group);

    /// <summary>Forgets a dynamic group's query (the group is being deleted).</summary>
    [Alias("RemoveDynamicGroup")]
    Task RemoveDynamicGroup(string thingGroupName);
}
