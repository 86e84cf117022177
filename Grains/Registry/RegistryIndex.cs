using OrleansIot.Grains.Abstractions.Registry;

namespace OrleansIot.Grains.Registry;

/// <summary>
/// The registry in memory, with the same queries as the PostgreSQL store: the embedded default keeps one in
/// <see cref="EmbeddedRegistryGrain"/> (one per cluster, like the rest of embedded state). Not thread-safe: its
/// grain calls it one turn at a time.
/// </summary>
[GenerateSerializer, Alias("OrleansIot.RegistryIndex")]
public sealed class RegistryIndex : IRegistryStore
{
    [Id(0)] public Dictionary<string, ThingRecord> Things { get; set; } = new(StringComparer.Ordinal);
    [Id(1)] public Dictionary<string, ThingTypeRecord> Types { get; set; } = new(StringComparer.Ordinal);
    [Id(2)] public Dictionary<string, ThingGroupRecord> Groups { get; set; } = new(StringComparer.Ordinal);
    [Id(3)] public Dictionary<string, HashSet<string>> Members { get; set; } = new(StringComparer.Ordinal);

    public Task<ThingRecord?> GetThingAsync(string thingName) => Task.FromResult(Things.GetValueOrDefault(thingName));

    public Task<bool> SaveThingAsync(ThingRecord thing, long previousVersion)
    {
        var stored = Things.TryGetValue(thing.ThingName, out var row) ? row.Version : 0;
        if (stored != previousVersion)
        {
            return Task.FromResult(false);
        }

        Things[thing.ThingName] = thing;
        return Task.FromResult(true);
    }

    public Task DeleteThingAsync(string thingName)
    {
        Things.Remove(thingName);
        foreach (var members in Members.Values)
        {
            members.Remove(thingName);
        }

        return Task.CompletedTask;
    }

    public Task<RegistryPage<ThingRecord>> ListThingsAsync(ThingQuery query)
    {
        var after = RegistryPaging.After(query.NextToken);
        var things = Things.Values.OrderBy(t => t.ThingName, StringComparer.Ordinal).Where(t =>
            (after is null || string.CompareOrdinal(t.ThingName, after) > 0)
            && (query.ThingTypeName is null || t.ThingTypeName == query.ThingTypeName)
            && (query.AttributeName is null || (t.Attributes.TryGetValue(query.AttributeName, out var value)
                && (query.AttributeValue is null || (query.UsePrefixAttributeValue ? value.StartsWith(query.AttributeValue, StringComparison.Ordinal) : value == query.AttributeValue)))));
        return Task.FromResult(RegistryPaging.Page(things, query.MaxResults, t => t.ThingName));
    }

    public Task<int> CountThingsOfTypeAsync(string thingTypeName) => Task.FromResult(Things.Values.Count(t => t.ThingTypeName == thingTypeName));

    public Task<ThingTypeRecord?> GetThingTypeAsync(string thingTypeName) => Task.FromResult(Types.GetValueOrDefault(thingTypeName));

    public Task<bool> SaveThingTypeAsync(ThingTypeRecord thingType, bool create)
    {
        if (create && Types.ContainsKey(thingType.ThingTypeName))
        {
            return Task.FromResult(false);
        }

        Types[thingType.ThingTypeName] = thingType;
        return Task.FromResult(true);
    }

    public Task DeleteThingTypeAsync(string thingTypeName)
    {
        Types.Remove(thingTypeName);
        return Task.CompletedTask;
    }

    public Task<RegistryPage<ThingTypeRecord>> ListThingTypesAsync(string? thingTypeName, string? nextToken, int maxResults)
    {
        var after = RegistryPaging.After(nextToken);
        var types = Types.Values.OrderBy(t => t.ThingTypeName, StringComparer.Ordinal).Where(t => (thingTypeName is null || t.ThingTypeName == thingTypeName) && (after is null || string.CompareOrdinal(t.ThingTypeName, after) > 0));
        return Task.FromResult(RegistryPaging.Page(types, maxResults, t => t.ThingTypeName));
    }

    public Task<ThingGroupRecord?> GetThingGroupAsync(string groupName) => Task.FromResult(Groups.GetValueOrDefault(groupName));

    public Task<bool> SaveThingGroupAsync(ThingGroupRecord group, long previousVersion)
    {
        var stored = Groups.TryGetValue(group.ThingGroupName, out var row) ? row.Version : 0;
        if (stored != previousVersion)
        {
            return Task.FromResult(false);
        }

        Groups[group.ThingGroupName] = group;
        return Task.FromResult(true);
    }

    public Task DeleteThingGroupAsync(string groupName)
    {
        Groups.Remove(groupName);
        Members.Remove(groupName);
        return Task.CompletedTask;
    }

    public Task<int> CountChildGroupsAsync(string groupName) => Task.FromResult(Groups.Values.Count(g => g.ParentGroupName == groupName));

    public Task<RegistryPage<ThingGroupRecord>> ListThingGroupsAsync(string? parentGroup, string? namePrefix, bool recursive, string? nextToken, int maxResults)
    {
        var after = RegistryPaging.After(nextToken);
        var groups = Groups.Values.OrderBy(g => g.ThingGroupName, StringComparer.Ordinal).Where(g =>
            (after is null || string.CompareOrdinal(g.ThingGroupName, after) > 0)
            && (namePrefix is null || g.ThingGroupName.StartsWith(namePrefix, StringComparison.Ordinal))
            && (parentGroup is null || (recursive ? g.Ancestors.Contains(parentGroup) : g.ParentGroupName == parentGroup)));
        return Task.FromResult(RegistryPaging.Page(groups, maxResults, g => g.ThingGroupName));
    }

    public Task<bool> AddMemberAsync(string groupName, string thingName)
    {
        if (!Groups.ContainsKey(groupName))
        {
            return Task.FromResult(false);
        }

        if (!Members.TryGetValue(groupName, out var members))
        {
            members = new HashSet<string>(StringComparer.Ordinal);
            Members[groupName] = members;
        }

        members.Add(thingName);
        return Task.FromResult(true);
    }

    public Task RemoveMemberAsync(string groupName, string thingName)
    {
        if (Members.TryGetValue(groupName, out var members))
        {
            members.Remove(thingName);
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<string>> GroupsOfAsync(string thingName) =>
        Task.FromResult<IReadOnlyList<string>>([.. Members.Where(m => m.Value.Contains(thingName)).Select(m => m.Key).Order(StringComparer.Ordinal)]);

    public Task<RegistryPage<string>> ListMembersAsync(string groupName, bool recursive, string? nextToken, int maxResults)
    {
        var after = RegistryPaging.After(nextToken);
        var groups = recursive
            ? Groups.Values.Where(g => g.ThingGroupName == groupName || g.Ancestors.Contains(groupName)).Select(g => g.ThingGroupName)
            : [groupName];
        var things = groups.SelectMany(g => Members.TryGetValue(g, out var m) ? m : [])
            .Distinct(StringComparer.Ordinal)
            .Where(t => after is null || string.CompareOrdinal(t, after) > 0)
            .Order(StringComparer.Ordinal);
        return Task.FromResult(RegistryPaging.Page(things, maxResults, t => t));
    }
}
