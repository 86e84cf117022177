using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Registry;

namespace OrleansIot.Grains.Registry;

/// <summary>The embedded default's registry store: one grain holding a <see cref="RegistryIndex"/>, for development scale.</summary>
[Alias("OrleansIot.IEmbeddedRegistryGrain")]
public interface IEmbeddedRegistryGrain : IGrainWithStringKey, IRegistryStore
{
}

/// <summary>
/// Holds the whole registry of an embedded cluster in its state (memory storage, so it outlives the grain's
/// deactivation but not the cluster). Every change writes the whole index: fine for a laptop's fleet; PostgreSQL
/// mode keeps the registry in tables instead.
/// </summary>
[GrainType("embedded-registry")]
internal sealed class EmbeddedRegistryGrain(
    [PersistentState("registry", StorageNames.Default)] IPersistentState<RegistryIndex> state) : Grain, IEmbeddedRegistryGrain
{
    private RegistryIndex Index => state.State;

    public Task<ThingRecord?> GetThingAsync(string thingName) => Index.GetThingAsync(thingName);

    public async Task<bool> SaveThingAsync(ThingRecord thing, long previousVersion) => await SavedAsync(await Index.SaveThingAsync(thing, previousVersion));

    public async Task DeleteThingAsync(string thingName)
    {
        await Index.DeleteThingAsync(thingName);
        await state.WriteStateAsync();
    }

    public Task<RegistryPage<ThingRecord>> ListThingsAsync(ThingQuery query) => Index.ListThingsAsync(query);

    public Task<int> CountThingsOfTypeAsync(string thingTypeName) => Index.CountThingsOfTypeAsync(thingTypeName);

    public Task<ThingTypeRecord?> GetThingTypeAsync(string thingTypeName) => Index.GetThingTypeAsync(thingTypeName);

    public async Task<bool> SaveThingTypeAsync(ThingTypeRecord thingType, bool create) => await SavedAsync(await Index.SaveThingTypeAsync(thingType, create));

    public async Task DeleteThingTypeAsync(string thingTypeName)
    {
        await Index.DeleteThingTypeAsync(thingTypeName);
        await state.WriteStateAsync();
    }

    public Task<RegistryPage<ThingTypeRecord>> ListThingTypesAsync(string? thingTypeName, string? nextToken, int maxResults) =>
        Index.ListThingTypesAsync(thingTypeName, nextToken, maxResults);

    public Task<ThingGroupRecord?> GetThingGroupAsync(string groupName) => Index.GetThingGroupAsync(groupName);

    public async Task<bool> SaveThingGroupAsync(ThingGroupRecord group, long previousVersion) => await SavedAsync(await Index.SaveThingGroupAsync(group, previousVersion));

    public async Task DeleteThingGroupAsync(string groupName)
    {
        await Index.DeleteThingGroupAsync(groupName);
        await state.WriteStateAsync();
    }

    public Task<int> CountChildGroupsAsync(string groupName) => Index.CountChildGroupsAsync(groupName);

    public Task<RegistryPage<ThingGroupRecord>> ListThingGroupsAsync(string? parentGroup, string? namePrefix, bool recursive, string? nextToken, int maxResults) =>
        Index.ListThingGroupsAsync(parentGroup, namePrefix, recursive, nextToken, maxResults);

    public async Task<bool> AddMemberAsync(string groupName, string thingName) => await SavedAsync(await Index.AddMemberAsync(groupName, thingName));

    public async Task RemoveMemberAsync(string groupName, string thingName)
    {
        await Index.RemoveMemberAsync(groupName, thingName);
        await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<string>> GroupsOfAsync(string thingName) => Index.GroupsOfAsync(thingName);

    public Task<RegistryPage<string>> ListMembersAsync(string groupName, bool recursive, string? nextToken, int maxResults) =>
        Index.ListMembersAsync(groupName, recursive, nextToken, maxResults);

    private async Task<bool> SavedAsync(bool changed)
    {
        if (changed)
        {
            await state.WriteStateAsync();
        }

        return changed;
    }
}
