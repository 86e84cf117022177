using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Registry;

namespace OrleansIot.Grains.FleetIndex;

/// <summary>
/// Where the thing index lives: in PostgreSQL (jsonb with GIN indexes) or in memory (the embedded default). Thing
/// grains write their parts as they change and wait for the write, so a search issued after a change was
/// acknowledged sees it. Entries without a registry part (a shadow of an unregistered thing) are never returned.
/// </summary>
public interface IFleetIndexStore
{
    /// <summary>Writes parts of a thing's entry together (one statement in PostgreSQL); a <c>null</c> section clears its part.</summary>
    Task WriteAsync(string thingName, IReadOnlyList<IndexPartWrite> parts);

    /// <summary>Writes one part of a thing's entry; <c>null</c> clears that part.</summary>
    Task WriteAsync(string thingName, IndexPart part, IndexSection? section) => WriteAsync(thingName, [new IndexPartWrite(part, section)]);

    /// <summary>
    /// Writes the connectivity part of the things that are registered (have an entry with a registry part) and leaves
    /// the others alone: a device that connects is not in the index until it is registered. The connection directory
    /// writes connects and disconnects this way, a batch at a time, without the things.
    /// </summary>
    Task WriteConnectivityAsync(IReadOnlyList<ConnectivityIndexWrite> writes);

    /// <summary>Removes the thing's entry.</summary>
    Task RemoveAsync(string thingName);

    Task<IndexSearchPage> SearchAsync(FleetQuery query, string? afterThingName, int maxResults);

    Task<FleetStatistics> StatisticsAsync(FleetQuery query, string field);

    Task<long> CardinalityAsync(FleetQuery query, string field);

    Task<IReadOnlyList<FleetPercentile>> PercentilesAsync(FleetQuery query, string field, IReadOnlyList<double> percents);

    Task<IReadOnlyList<FleetBucket>> BucketsAsync(FleetQuery query, string field, int maxBuckets);

    /// <summary>
    /// Registered things whose shadows were written after their index entry's shadow part: what a node that died held
    /// in its write-behind (<see cref="IndexWriteBehind"/>). The memory store dies with its node: none.
    /// </summary>
    Task<IReadOnlyList<string>> ShadowsNewerThanEntriesAsync() => Task.FromResult<IReadOnlyList<string>>([]);

    /// <summary>Names of every entry, registered or not, in name order (for rebuilds).</summary>
    Task<RegistryPage<string>> NamesAsync(string? afterThingName, int maxResults);
}

/// <summary>Which part of an entry a field is in; the field names AWS's thing index has.</summary>
public static class IndexFieldNames
{
    public static IndexPart? PartOf(string field) =>
        field is "thingName" or "thingId" or "thingTypeName" or "thingGroupNames" or "attributes" or "registry.version"
            || field.StartsWith("attributes.", StringComparison.Ordinal)
            ? IndexPart.Registry
            : field == "shadow" || field.StartsWith("shadow.", StringComparison.Ordinal)
                ? IndexPart.Shadow
                : field.StartsWith("connectivity.", StringComparison.Ordinal)
                    ? IndexPart.Connectivity
                    : null;

    /// <summary>Refuses fields the thing index does not have or the configuration does not index.</summary>
    public static void Check(FleetQuery query, IndexingConfiguration configuration)
    {
        foreach (var field in query.Fields)
        {
            Check(field, configuration);
        }
    }

    public static IndexPart Check(string field, IndexingConfiguration configuration)
    {
        var part = PartOf(field) ?? throw FleetQuery.Invalid($"The thing index has no field {field}.");
        if (part == IndexPart.Shadow && !configuration.Shadow)
        {
            throw FleetQuery.Invalid($"Field {field} is a shadow field; shadows are not indexed (thingIndexingMode is {configuration.ThingIndexingMode}).");
        }

        if (part == IndexPart.Connectivity && !configuration.Connectivity)
        {
            throw FleetQuery.Invalid($"Field {field} is a connectivity field; connectivity is not indexed (thingConnectivityIndexingMode is {configuration.ThingConnectivityIndexingMode}).");
        }

        return part;
    }

    /// <summary>The part's fields in the SQL store's statements (<c>r</c>, <c>s</c>, <c>c</c>: the three part tables).</summary>
    public static string Column(IndexPart part) => part switch
    {
        IndexPart.Registry => "r.fields",
        IndexPart.Shadow => "s.fields",
        _ => "c.fields",
    };

    public static ApiException InvalidAggregation(string message) => new(400, "InvalidAggregationException", message);
}
