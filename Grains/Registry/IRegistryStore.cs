using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Registry;

namespace OrleansIot.Grains.Registry;

/// <summary>
/// Where the registry lives, queryable (AWS's list operations filter and page over the whole fleet, so records live
/// in a store, not only in grain state). The grains keep the rules and serialize changes per entity (a thing, a type,
/// a group); the store makes each write conditional, so a record never goes back a version.
/// </summary>
public interface IRegistryStore
{
    Task<ThingRecord?> GetThingAsync(string thingName);

    /// <summary>Writes the thing if the stored version is <paramref name="previousVersion"/> (0: it must not exist); false otherwise.</summary>
    Task<bool> SaveThingAsync(ThingRecord thing, long previousVersion);

    /// <summary>Deletes the thing and its group memberships.</summary>
    Task DeleteThingAsync(string thingName);

    /// <summary>Things in name order, filtered as AWS <c>ListThings</c> (a type, one attribute by value or prefix).</summary>
    Task<RegistryPage<ThingRecord>> ListThingsAsync(ThingQuery query);

    Task<int> CountThingsOfTypeAsync(string thingTypeName);

    Task<ThingTypeRecord?> GetThingTypeAsync(string thingTypeName);

    /// <summary>Writes the type; with <paramref name="create"/> only if it does not exist yet (false if it does).</summary>
    Task<bool> SaveThingTypeAsync(ThingTypeRecord thingType, bool create);

    Task DeleteThingTypeAsync(string thingTypeName);

    Task<RegistryPage<ThingTypeRecord>> ListThingTypesAsync(string? thingTypeName, string? nextToken, int maxResults);

    Task<ThingGroupRecord?> GetThingGroupAsync(string groupName);

    /// <summary>Writes the group if the stored version is <paramref name="previousVersion"/> (0: it must not exist); false otherwise.</summary>
    Task<bool> SaveThingGroupAsync(ThingGroupRecord group, long previousVersion);

    /// <summary>Deletes the group and its memberships.</summary>
    Task DeleteThingGroupAsync(string groupName);

    Task<int> CountChildGroupsAsync(string groupName);

    /// <summary>Groups in name order: all, or the children of <paramref name="parentGroup"/> (all descendants when <paramref name="recursive"/>).</summary>
    Task<RegistryPage<ThingGroupRecord>> ListThingGroupsAsync(string? parentGroup, string? namePrefix, bool recursive, string? nextToken, int maxResults);

    /// <summary>Adds the membership; false when the group no longer exists.</summary>
    Task<bool> AddMemberAsync(string groupName, string thingName);

    Task RemoveMemberAsync(string groupName, string thingName);

    /// <summary>The groups a thing is directly in, by name.</summary>
    Task<IReadOnlyList<string>> GroupsOfAsync(string thingName);

    /// <summary>Thing names in a group (and its descendants when <paramref name="recursive"/>), in name order.</summary>
    Task<RegistryPage<string>> ListMembersAsync(string groupName, bool recursive, string? nextToken, int maxResults);
}

/// <summary>Opaque page tokens: the last name of the previous page.</summary>
public static class RegistryPaging
{
    public static string Token(string lastName) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(lastName));

    /// <summary>The name to continue after; an unreadable token is refused.</summary>
    public static string? After(string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return null;
        }

        try
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(token));
        }
        catch (FormatException)
        {
            throw ApiException.Invalid("The nextToken is not valid.");
        }
    }

    /// <summary>A page of <paramref name="maxResults"/> from items ordered by name (one extra item read tells whether more follow).</summary>
    public static RegistryPage<T> Page<T>(IEnumerable<T> orderedAfter, int maxResults, Func<T, string> name)
    {
        var items = orderedAfter.Take(maxResults + 1).ToList();
        string? next = null;
        if (items.Count > maxResults)
        {
            items.RemoveAt(maxResults);
            next = Token(name(items[^1]));
        }

        return new RegistryPage<T>(items, next);
    }
}
