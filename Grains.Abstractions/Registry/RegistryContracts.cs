namespace OrleansIot.Grains.Abstractions.Registry;

/// <summary>A registered thing (AWS <c>DescribeThing</c>): its id is a UUID assigned at creation; its version starts at 1, +1 per update.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ThingRecord")]
public sealed record ThingRecord(
    [property: Id(0)] string ThingName,
    [property: Id(1)] string ThingId,
    [property: Id(2)] string? ThingTypeName,
    [property: Id(3)] IReadOnlyDictionary<string, string> Attributes,
    [property: Id(4)] long Version);

/// <summary>A thing type (AWS <c>DescribeThingType</c>). Immutable but for deprecation.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ThingTypeRecord")]
public sealed record ThingTypeRecord(
    [property: Id(0)] string ThingTypeName,
    [property: Id(1)] string ThingTypeId,
    [property: Id(2)] string? Description,
    [property: Id(3)] IReadOnlyList<string> SearchableAttributes,
    [property: Id(4)] bool Deprecated,
    [property: Id(5)] DateTimeOffset? DeprecationDate,
    [property: Id(6)] DateTimeOffset CreationDate);

/// <summary>
/// A thing group (AWS <c>DescribeThingGroup</c>), static or dynamic. <c>Ancestors</c>: root first, down to the direct parent;
/// empty for a root group; fixed at creation (AWS: a parent cannot change).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ThingGroupRecord")]
public sealed record ThingGroupRecord(
    [property: Id(0)] string ThingGroupName,
    [property: Id(1)] string ThingGroupId,
    [property: Id(2)] IReadOnlyList<string> Ancestors,
    [property: Id(3)] string? Description,
    [property: Id(4)] IReadOnlyDictionary<string, string> Attributes,
    [property: Id(5)] long Version,
    [property: Id(6)] DateTimeOffset CreationDate,
    [property: Id(7)] string? QueryString = null)
{
    /// <summary>A dynamic group (AWS <c>CreateDynamicThingGroup</c>): its members are the things its fleet-index query matches.</summary>
    public bool IsDynamic => QueryString is not null;

    /// <summary>The direct parent, if any.</summary>
    public string? ParentGroupName => Ancestors.Count == 0 ? null : Ancestors[^1];

    /// <summary>The root of its hierarchy (itself for a root group).</summary>
    public string RootGroupName => Ancestors.Count == 0 ? ThingGroupName : Ancestors[0];
}

/// <summary>AWS <c>attributePayload</c>: with <see cref="Merge"/> the attributes merge and an empty value removes one; without, they replace all.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.AttributePayload")]
public sealed record AttributePayload(
    [property: Id(0)] IReadOnlyDictionary<string, string>? Attributes,
    [property: Id(1)] bool Merge);

/// <summary>AWS <c>UpdateThing</c>'s body.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ThingUpdate")]
public sealed record ThingUpdate(
    [property: Id(0)] string? ThingTypeName,
    [property: Id(1)] AttributePayload? AttributePayload,
    [property: Id(2)] long? ExpectedVersion,
    [property: Id(3)] bool RemoveThingType);

/// <summary>A page of names or records; <see cref="NextToken"/> is <c>null</c> on the last page.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.RegistryPage`1")]
public sealed record RegistryPage<T>(
    [property: Id(0)] IReadOnlyList<T> Items,
    [property: Id(1)] string? NextToken);

/// <summary>AWS <c>ListThings</c>' filters.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ThingQuery")]
public sealed record ThingQuery(
    [property: Id(0)] string? AttributeName,
    [property: Id(1)] string? AttributeValue,
    [property: Id(2)] bool UsePrefixAttributeValue,
    [property: Id(3)] string? ThingTypeName,
    [property: Id(4)] string? NextToken,
    [property: Id(5)] int MaxResults);

