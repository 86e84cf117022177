using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Registry;

namespace OrleansIot.Grains.Registry;

/// <summary>The list operations: read-only queries of the registry store, answered by whichever silo is at hand.</summary>
[GrainType("registry-query"), Orleans.Concurrency.StatelessWorker]
internal sealed class RegistryQueryGrain(IRegistryStore registry) : Grain, IRegistryQueryGrain
{
    public Task<RegistryPage<ThingRecord>> ListThings(ThingQuery query)
    {
        if (query.AttributeValue is not null && query.AttributeName is null)
        {
            throw ApiException.Invalid("attributeValue needs attributeName.");
        }

        return registry.ListThingsAsync(query with { MaxResults = RegistryRules.PageSize(query.MaxResults) });
    }

    public Task<RegistryPage<ThingTypeRecord>> ListThingTypes(string? thingTypeName, string? nextToken, int maxResults) =>
        registry.ListThingTypesAsync(thingTypeName, nextToken, RegistryRules.PageSize(maxResults));

    public Task<RegistryPage<ThingGroupRecord>> ListThingGroups(string? parentGroup, string? namePrefixFilter, bool recursive, string? nextToken, int maxResults) =>
        registry.ListThingGroupsAsync(parentGroup, namePrefixFilter, recursive, nextToken, RegistryRules.PageSize(maxResults));

    public Task<RegistryPage<string>> ListThingsInThingGroup(string thingGroupName, bool recursive, string? nextToken, int maxResults) =>
        registry.ListMembersAsync(thingGroupName, recursive, nextToken, RegistryRules.PageSize(maxResults));
}
