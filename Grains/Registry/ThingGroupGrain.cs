using OrleansIot.Grains.Abstractions;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Registry;

/// <summary>A static thing group: hierarchy rules here, record and memberships in the registry store.</summary>
[GrainType("thing-group")]
internal sealed class ThingGroupGrain(
    IRegistryStore registry,
    IOptions<RegistryOptions> options,
    IOptions<FleetIndex.FleetIndexOptions> indexOptions,
    FleetIndex.FleetIndexView indexView,
    IBrokerPublisher broker,
    TimeProvider time) : Grain, IThingGroupGrain
{
    private const int MaxChildren = 100;

    private string Name => this.GetPrimaryKeyString();

    private RegistryEvents Events => new(options.Value, broker, time);

    public async Task<ThingGroupRecord> Create(string? parentGroupName, string? description, IReadOnlyDictionary<string, string>? attributes)
    {
        RegistryRules.Name("Thing group", Name);
        RegistryRules.Description(description);
        RegistryRules.Attributes(attributes);
        var wanted = new Dictionary<string, string>(attributes ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        if (wanted.Count > RegistryRules.MaxGroupAttributes)
        {
            throw ApiException.Invalid($"A thing group can have at most {RegistryRules.MaxGroupAttributes} attributes.");
        }

        if (await registry.GetThingGroupAsync(Name) is { } existing)
        {
            return !existing.IsDynamic && existing.ParentGroupName == parentGroupName && existing.Description == description && RegistryRules.SameAttributes(existing.Attributes, wanted)
                ? existing
                : throw ApiException.AlreadyExists($"Thing group {Name} already exists with a different configuration.");
        }

        IReadOnlyList<string> ancestors = [];
        string? parentId = null;
        if (parentGroupName is not null)
        {
            var parent = await registry.GetThingGroupAsync(parentGroupName) ?? throw ApiException.NotFound($"Parent thing group {parentGroupName} cannot be found.");
            if (parent.IsDynamic)
            {
                throw ApiException.Invalid($"Thing group {parentGroupName} is dynamic; a dynamic group cannot have child groups.");
            }

            ancestors = [.. parent.Ancestors, parent.ThingGroupName];
            parentId = parent.ThingGroupId;
            if (ancestors.Count + 1 > RegistryRules.MaxGroupDepth)
            {
                throw ApiException.Invalid($"A thing group hierarchy can be at most {RegistryRules.MaxGroupDepth} levels deep.");
            }

            if (await registry.CountChildGroupsAsync(parentGroupName) >= MaxChildren)
            {
                throw ApiException.LimitExceeded($"Thing group {parentGroupName} already has {MaxChildren} child groups.");
            }
        }

        var group = new ThingGroupRecord(Name, Guid.NewGuid().ToString(), ancestors, description, wanted, 1, time.GetUtcNow());
        if (!await registry.SaveThingGroupAsync(group, 0))
        {
            throw ApiException.AlreadyExists($"Thing group {Name} already exists.");
        }

        Events.ThingGroup("CREATED", group, parentId);
        return group;
    }

    public Task<ThingGroupRecord?> Describe() => registry.GetThingGroupAsync(Name);

    public async Task<ThingGroupRecord> Update(string? description, AttributePayload? attributes, long? expectedVersion)
    {
        var existing = await registry.GetThingGroupAsync(Name) ?? throw ApiException.NotFound($"Thing group {Name} cannot be found.");
        if (expectedVersion is { } expected && expected != existing.Version)
        {
            throw ApiException.VersionConflict($"The version of thing group {Name} is {existing.Version}, not {expected}.");
        }

        RegistryRules.Description(description);
        RegistryRules.Attributes(attributes?.Attributes);
        var merged = RegistryRules.Apply(existing.Attributes, attributes);
        if (merged.Count > RegistryRules.MaxGroupAttributes)
        {
            throw ApiException.Invalid($"A thing group can have at most {RegistryRules.MaxGroupAttributes} attributes.");
        }

        var group = existing with { Description = description ?? existing.Description, Attributes = merged, Version = existing.Version + 1 };
        if (!await registry.SaveThingGroupAsync(group, existing.Version))
        {
            throw ApiException.VersionConflict($"Thing group {Name} changed meanwhile; read it again.");
        }

        Events.ThingGroup("UPDATED", group, null);
        return group;
    }

    public async Task Delete(long? expectedVersion)
    {
        if (await registry.GetThingGroupAsync(Name) is not { } existing)
        {
            return;
        }

        if (expectedVersion is { } expected && expected != existing.Version)
        {
            throw ApiException.VersionConflict($"The version of thing group {Name} is {existing.Version}, not {expected}.");
        }

        if (await registry.CountChildGroupsAsync(Name) > 0)
        {
            throw ApiException.Invalid($"Thing group {Name} has child groups; delete them first.");
        }

        var members = new List<string>();
        string? token = null;
        do
        {
            var page = await registry.ListMembersAsync(Name, false, token, 250);
            members.AddRange(page.Items);
            token = page.NextToken;
        }
        while (token is not null);

        if (existing.IsDynamic)
        {
            await Admin.RemoveDynamicGroup(Name);   // first, so no thing joins it again meanwhile
        }

        await registry.DeleteThingGroupAsync(Name);
        Events.ThingGroup("DELETED", existing, null);

        // Its former members' index entries, access and continuous jobs follow.
        await Task.WhenAll(members.Select(m => GrainFactory.GetGrain<IThingGrain>(m).GroupDeleted(existing)));
    }

    public async Task<ThingGroupRecord> CreateDynamic(string queryString, string? description, IReadOnlyDictionary<string, string>? attributes)
    {
        RegistryRules.Name("Thing group", Name);
        RegistryRules.Description(description);
        RegistryRules.Attributes(attributes);
        await CheckQueryAsync(queryString);
        var wanted = new Dictionary<string, string>(attributes ?? new Dictionary<string, string>(), StringComparer.Ordinal);
        if (wanted.Count > RegistryRules.MaxGroupAttributes)
        {
            throw ApiException.Invalid($"A thing group can have at most {RegistryRules.MaxGroupAttributes} attributes.");
        }

        if (await registry.GetThingGroupAsync(Name) is { } existing)
        {
            return existing.QueryString == queryString && existing.Description == description && RegistryRules.SameAttributes(existing.Attributes, wanted)
                ? existing
                : throw ApiException.AlreadyExists($"Thing group {Name} already exists with a different configuration.");
        }

        var group = new ThingGroupRecord(Name, Guid.NewGuid().ToString(), [], description, wanted, 1, time.GetUtcNow(), queryString);
        if (!await registry.SaveThingGroupAsync(group, 0))
        {
            throw ApiException.AlreadyExists($"Thing group {Name} already exists.");
        }

        try
        {
            await Admin.SetDynamicGroup(new DynamicGroupQuery(Name, queryString));
        }
        catch (ApiException)
        {
            await registry.DeleteThingGroupAsync(Name);   // over the limit of dynamic groups: not created
            throw;
        }

        Events.ThingGroup("CREATED", group, null);
        return group;
    }

    public async Task<ThingGroupRecord> UpdateDynamic(string? queryString, string? description, AttributePayload? attributes, long? expectedVersion)
    {
        var existing = await registry.GetThingGroupAsync(Name) ?? throw ApiException.NotFound($"Thing group {Name} cannot be found.");
        if (!existing.IsDynamic)
        {
            throw ApiException.Invalid($"Thing group {Name} is static; UpdateThingGroup changes it.");
        }

        if (expectedVersion is { } expected && expected != existing.Version)
        {
            throw ApiException.VersionConflict($"The version of thing group {Name} is {existing.Version}, not {expected}.");
        }

        if (queryString is not null)
        {
            await CheckQueryAsync(queryString);
        }

        RegistryRules.Description(description);
        RegistryRules.Attributes(attributes?.Attributes);
        var merged = RegistryRules.Apply(existing.Attributes, attributes);
        var group = existing with
        {
            Description = description ?? existing.Description,
            Attributes = merged,
            Version = existing.Version + 1,
            QueryString = queryString ?? existing.QueryString,
        };
        if (!await registry.SaveThingGroupAsync(group, existing.Version))
        {
            throw ApiException.VersionConflict($"Thing group {Name} changed meanwhile; read it again.");
        }

        if (group.QueryString != existing.QueryString)
        {
            await Admin.SetDynamicGroup(new DynamicGroupQuery(Name, group.QueryString!));
        }

        Events.ThingGroup("UPDATED", group, null);
        return group;
    }

    private IFleetIndexAdminGrain Admin => GrainFactory.GetGrain<IFleetIndexAdminGrain>(0);

    private async Task CheckQueryAsync(string queryString)
    {
        var query = FleetIndex.FleetQuery.Parse(queryString, indexOptions.Value.Limits);
        var configuration = (await indexView.CurrentAsync()).Configuration;
        if (!configuration.Registry)
        {
            throw new ApiException(400, "IndexNotReadyException", "The thing index is off (thingIndexingMode OFF); a dynamic group needs it.");
        }

        FleetIndex.IndexFieldNames.Check(query, configuration);
    }
}
