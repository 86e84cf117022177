using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Registry;

namespace OrleansIot.Grains.Things;

// The thing grain's registry record. The record lives in the registry store (AWS's list operations query it); the
// grain decides the rules one request at a time for its thing, and the store refuses a write that does not follow
// the version it was decided on. Read from the store per request: registry calls are rare, and nothing is held for
// the many activations that only carry a connection.
internal sealed partial class ThingGrain
{
    private RegistryEvents Events => new(registryOptions.Value, broker, time);

    public async Task<ThingRecord> CreateThing(string? thingTypeName, IReadOnlyDictionary<string, string>? attributes)
    {
        RegistryRules.Name("Thing", ThingName);
        RegistryRules.Attributes(attributes);
        var wanted = new Dictionary<string, string>(attributes ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        if (thingTypeName is not null)
        {
            await UsableTypeAsync(thingTypeName);
        }

        RegistryRules.AttributeCount(wanted.Count, thingTypeName is not null);
        if (await registry.GetThingAsync(ThingName) is { } existing)
        {
            // Idempotent for the same configuration (AWS).
            return existing.ThingTypeName == thingTypeName && RegistryRules.SameAttributes(existing.Attributes, wanted)
                ? existing
                : throw ApiException.AlreadyExists($"Thing {ThingName} already exists with a different configuration.");
        }

        var thing = new ThingRecord(ThingName, Guid.NewGuid().ToString(), thingTypeName, wanted, 1);
        if (!await registry.SaveThingAsync(thing, 0))
        {
            throw ApiException.AlreadyExists($"Thing {ThingName} already exists.");
        }

        Events.Thing("CREATED", thing);
        _record = thing;
        _groups = [];
        if (!state.State.Registered)
        {
            state.State.Registered = true;
            await PersistAsync();
        }

        await IndexAsync(AllParts);   // its shadows and connectivity may predate the registration
        return thing;
    }

    public Task<ThingRecord?> DescribeThing() => registry.GetThingAsync(ThingName);

    public async Task<ThingRecord> UpdateThing(ThingUpdate update)
    {
        var existing = await registry.GetThingAsync(ThingName) ?? throw ApiException.NotFound($"Thing {ThingName} cannot be found.");
        if (update.ExpectedVersion is { } expected && expected != existing.Version)
        {
            throw ApiException.VersionConflict($"The version of thing {ThingName} is {existing.Version}, not {expected}.");
        }

        if (update.RemoveThingType && update.ThingTypeName is not null)
        {
            throw ApiException.Invalid("Give either thingTypeName or removeThingType, not both.");
        }

        var type = update.RemoveThingType ? null : update.ThingTypeName ?? existing.ThingTypeName;
        if (type is not null && type != existing.ThingTypeName)
        {
            await UsableTypeAsync(type);
        }

        RegistryRules.Attributes(update.AttributePayload?.Attributes);
        var attributes = RegistryRules.Apply(existing.Attributes, update.AttributePayload);
        RegistryRules.AttributeCount(attributes.Count, type is not null);
        var thing = existing with { ThingTypeName = type, Attributes = attributes, Version = existing.Version + 1 };
        if (!await registry.SaveThingAsync(thing, existing.Version))
        {
            throw ApiException.VersionConflict($"Thing {ThingName} changed meanwhile; read it again.");
        }

        Events.Thing("UPDATED", thing);
        RegistryChanged(thing, groupsChanged: false);
        await IndexAsync(IndexPart.Registry);
        await AccessChangedAsync();   // its type and attributes are policy variables
        return thing;
    }

    public async Task DeleteThing(long? expectedVersion)
    {
        if (await registry.GetThingAsync(ThingName) is not { } existing)
        {
            return;   // AWS: deleting a thing that does not exist succeeds
        }

        if (expectedVersion is { } expected && expected != existing.Version)
        {
            throw ApiException.VersionConflict($"The version of thing {ThingName} is {existing.Version}, not {expected}.");
        }

        await registry.DeleteThingAsync(ThingName);
        Events.Thing("DELETED", existing);
        RegistryChanged(null, groupsChanged: true);
        if (state.State.Registered)
        {
            state.State.Registered = false;
            await PersistAsync();
        }

        try
        {
            await index.RemoveAsync(ThingName);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The entry would still be found: counted, logged and removed by the reindex that follows.
            IndexFailed(ex);
        }

        await AccessChangedAsync();
    }

    public async Task AddToThingGroup(string thingGroupName)
    {
        var thing = await registry.GetThingAsync(ThingName) ?? throw ApiException.NotFound($"Thing {ThingName} cannot be found.");
        var group = await registry.GetThingGroupAsync(thingGroupName) ?? throw ApiException.NotFound($"Thing group {thingGroupName} cannot be found.");
        StaticOnly(group);
        var current = await registry.GroupsOfAsync(ThingName);
        if (current.Contains(thingGroupName))
        {
            return;
        }

        if (current.Count >= RegistryRules.MaxGroupsPerThing)
        {
            throw ApiException.LimitExceeded($"Thing {ThingName} is already in {RegistryRules.MaxGroupsPerThing} thing groups, the most a thing can be in.");
        }

        foreach (var name in current)
        {
            if (await registry.GetThingGroupAsync(name) is { IsDynamic: false } other && other.RootGroupName == group.RootGroupName)
            {
                throw ApiException.Invalid($"Thing {ThingName} is already in {name}, in the same hierarchy as {thingGroupName}; a thing can be in one group of a hierarchy.");
            }
        }

        if (!await registry.AddMemberAsync(thingGroupName, ThingName))
        {
            throw ApiException.NotFound($"Thing group {thingGroupName} cannot be found.");
        }

        _groups = null;
        await JoinedAsync(group, thing);
        await IndexAsync(IndexPart.Registry);
    }

    /// <summary>What follows a thing into a group (static or dynamic): the event, the group's policies, continuous jobs.</summary>
    private async Task JoinedAsync(ThingGroupRecord group, ThingRecord thing)
    {
        Events.Membership("ADDED", group, thing);
        await AccessChangedAsync();   // its groups' policies apply to it
        var jobs = await GrainFactory.GetGrain<Abstractions.Jobs.IJobCatalogGrain>(0).Following([.. group.Ancestors, group.ThingGroupName]);
        foreach (var job in jobs)
        {
            await GrainFactory.GetGrain<Abstractions.Jobs.IJobGrain>(job).ThingJoined(ThingName);   // continuous jobs reach new members
        }
    }

    private async Task LeftAsync(ThingGroupRecord group, ThingRecord thing)
    {
        Events.Membership("REMOVED", group, thing);
        await AccessChangedAsync();
        await LeaveJobsAsync(group);
    }

    private static void StaticOnly(ThingGroupRecord group)
    {
        if (group.IsDynamic)
        {
            throw ApiException.Invalid($"Thing group {group.ThingGroupName} is dynamic: its members are the things its query matches.");
        }
    }

    public async Task RemoveFromThingGroup(string thingGroupName)
    {
        var thing = await registry.GetThingAsync(ThingName) ?? throw ApiException.NotFound($"Thing {ThingName} cannot be found.");
        var group = await registry.GetThingGroupAsync(thingGroupName) ?? throw ApiException.NotFound($"Thing group {thingGroupName} cannot be found.");
        StaticOnly(group);
        if (!(await registry.GroupsOfAsync(ThingName)).Contains(thingGroupName))
        {
            return;
        }

        await registry.RemoveMemberAsync(thingGroupName, ThingName);
        _groups = null;
        await LeftAsync(group, thing);
        await IndexAsync(IndexPart.Registry);
    }

    /// <summary>Continuous jobs that reached the thing only through the group it left remove its queued execution (AWS: REMOVED).</summary>
    private async Task LeaveJobsAsync(ThingGroupRecord left)
    {
        var catalog = GrainFactory.GetGrain<Abstractions.Jobs.IJobCatalogGrain>(0);
        var before = await catalog.Following([.. left.Ancestors, left.ThingGroupName]);
        if (before.Count == 0)
        {
            return;
        }

        var remaining = new List<string>();
        foreach (var name in await registry.GroupsOfAsync(ThingName))
        {
            if (await registry.GetThingGroupAsync(name) is { } other)
            {
                remaining.AddRange([.. other.Ancestors, other.ThingGroupName]);
            }
        }

        var still = remaining.Count == 0 ? [] : await catalog.Following(remaining);
        foreach (var job in before.Except(still, StringComparer.Ordinal))
        {
            await GrainFactory.GetGrain<Abstractions.Jobs.IJobGrain>(job).ThingLeft(ThingName);
        }
    }

    private Task AccessChangedAsync() =>
        access.Changed(new Abstractions.Policies.AccessChange(Abstractions.Policies.AccessChangeKind.Thing, ThingName));

    public async Task<IReadOnlyList<ThingGroupRecord>> ListThingGroups()
    {
        var groups = new List<ThingGroupRecord>();
        foreach (var name in await registry.GroupsOfAsync(ThingName))
        {
            if (await registry.GetThingGroupAsync(name) is { } group)
            {
                groups.Add(group);
            }
        }

        return groups;
    }

    private async Task UsableTypeAsync(string thingTypeName)
    {
        var type = await registry.GetThingTypeAsync(thingTypeName) ?? throw ApiException.NotFound($"Thing type {thingTypeName} cannot be found.");
        if (type.Deprecated)
        {
            throw ApiException.Invalid($"Thing type {thingTypeName} is deprecated: no thing can be given it.");
        }
    }
}
