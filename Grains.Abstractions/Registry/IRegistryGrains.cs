namespace OrleansIot.Grains.Abstractions.Registry;

/// <summary>A thing type, keyed by its name (AWS <c>CreateThingType</c>, <c>DescribeThingType</c>, <c>DeprecateThingType</c>, <c>DeleteThingType</c>).</summary>
[Alias("OrleansIot.IThingTypeGrain")]
public interface IThingTypeGrain : IGrainWithStringKey
{
    /// <summary>Creates the type; the same request again returns it, a different one is <c>ResourceAlreadyExistsException</c>.</summary>
    [Alias("Create")]
    Task<ThingTypeRecord> Create(string? description, IReadOnlyList<string>? searchableAttributes);

    /// <summary>The type, or <c>null</c>.</summary>
    [Alias("Describe")]
    Task<ThingTypeRecord?> Describe();

    /// <summary>Deprecates the type (no new things may use it), or with <paramref name="undo"/> takes that back.</summary>
    [Alias("Deprecate")]
    Task<ThingTypeRecord> Deprecate(bool undo);

    /// <summary>Deletes a type deprecated long enough ago (AWS: 5 minutes) that no thing uses.</summary>
    [Alias("Delete")]
    Task Delete();
}

/// <summary>A static thing group, keyed by its name (AWS <c>CreateThingGroup</c> … <c>DeleteThingGroup</c>).</summary>
[Alias("OrleansIot.IThingGroupGrain")]
public interface IThingGroupGrain : IGrainWithStringKey
{
    /// <summary>Creates the group under <paramref name="parentGroupName"/> (fixed for life; at most 7 levels deep).</summary>
    [Alias("Create")]
    Task<ThingGroupRecord> Create(string? parentGroupName, string? description, IReadOnlyDictionary<string, string>? attributes);

    /// <summary>The group, or <c>null</c>.</summary>
    [Alias("Describe")]
    Task<ThingGroupRecord?> Describe();

    /// <summary>Changes the description and attributes; <c>VersionConflictException</c> when <paramref name="expectedVersion"/> is not the current one.</summary>
    [Alias("Update")]
    Task<ThingGroupRecord> Update(string? description, AttributePayload? attributes, long? expectedVersion);

    /// <summary>Deletes the group (not while it has child groups) and its memberships; a missing group is fine (AWS).</summary>
    [Alias("Delete")]
    Task Delete(long? expectedVersion);

    /// <summary>
    /// AWS <c>CreateDynamicThingGroup</c>: a group whose members are the things the fleet-index query matches, kept
    /// so as things change. Returns once the things matching now are members.
    /// </summary>
    [Alias("CreateDynamic")]
    Task<ThingGroupRecord> CreateDynamic(string queryString, string? description, IReadOnlyDictionary<string, string>? attributes);

    /// <summary>AWS <c>UpdateDynamicThingGroup</c>: a new query (members follow it), description or attributes.</summary>
    [Alias("UpdateDynamic")]
    Task<ThingGroupRecord> UpdateDynamic(string? queryString, string? description, AttributePayload? attributes, long? expectedVersion);
}

/// <summary>AWS's list operations over the registry store (stateless: any silo answers).</summary>
[Alias("OrleansIot.IRegistryQueryGrain")]
public interface IRegistryQueryGrain : IGrainWithIntegerKey
{
    /// <summary>AWS <c>ListThings</c>.</summary>
    [Alias("ListThings")]
    Task<RegistryPage<ThingRecord>> ListThings(ThingQuery query);

    /// <summary>AWS <c>ListThingTypes</c> (optionally one type by name).</summary>
    [Alias("ListThingTypes")]
    Task<RegistryPage<ThingTypeRecord>> ListThingTypes(string? thingTypeName, string? nextToken, int maxResults);

    /// <summary>AWS <c>ListThingGroups</c>: all groups, or the children (with <paramref name="recursive"/> all descendants) of a parent.</summary>
    [Alias("ListThingGroups")]
    Task<RegistryPage<ThingGroupRecord>> ListThingGroups(string? parentGroup, string? namePrefixFilter, bool recursive, string? nextToken, int maxResults);

    /// <summary>AWS <c>ListThingsInThingGroup</c>.</summary>
    [Alias("ListThingsInThingGroup")]
    Task<RegistryPage<string>> ListThingsInThingGroup(string thingGroupName, bool recursive, string? nextToken, int maxResults);
}
