using OrleansIot.Grains.Abstractions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Control plane: the registry with AWS's paths (under <c>/api</c>), request bodies and response field names: things,
/// thing types, static thing groups. The rules live in the grains; their <see cref="ApiException"/>s become
/// problem+json with AWS's exception name (<see cref="ApiErrors"/>).
/// </summary>
public static class RegistryApi
{
    public static IEndpointRouteBuilder MapRegistryApi(this IEndpointRouteBuilder endpoints)
    {
        var things = endpoints.MapGroup("/api/things").WithTags("Registry").ChangedBy(ApiKeyRoles.Operator);
        things.MapPost("/{thingName}", CreateThingAsync).WithName("CreateThing");
        things.MapGet("/{thingName}", DescribeThingAsync).WithName("DescribeThing");
        things.MapMethods("/{thingName}", ["PATCH"], UpdateThingAsync).WithName("UpdateThing");
        things.MapDelete("/{thingName}", DeleteThingAsync).WithName("DeleteThing");
        things.MapGet("", ListThingsAsync).WithName("ListThings");
        things.MapGet("/{thingName}/thing-groups", ListThingGroupsForThingAsync).WithName("ListThingGroupsForThing");

        var types = endpoints.MapGroup("/api/thing-types").WithTags("Registry").ChangedBy(ApiKeyRoles.Operator);
        types.MapPost("/{thingTypeName}", CreateThingTypeAsync).WithName("CreateThingType");
        types.MapGet("/{thingTypeName}", DescribeThingTypeAsync).WithName("DescribeThingType");
        types.MapPost("/{thingTypeName}/deprecate", DeprecateThingTypeAsync).WithName("DeprecateThingType");
        types.MapDelete("/{thingTypeName}", DeleteThingTypeAsync).WithName("DeleteThingType");
        types.MapGet("", ListThingTypesAsync).WithName("ListThingTypes");

        var groups = endpoints.MapGroup("/api/thing-groups").WithTags("Registry").ChangedBy(ApiKeyRoles.Operator);
        groups.MapPut("/addThingToThingGroup", AddThingToThingGroupAsync).WithName("AddThingToThingGroup");
        groups.MapPut("/removeThingFromThingGroup", RemoveThingFromThingGroupAsync).WithName("RemoveThingFromThingGroup");
        groups.MapPost("/{thingGroupName}", CreateThingGroupAsync).WithName("CreateThingGroup");
        groups.MapGet("/{thingGroupName}", DescribeThingGroupAsync).WithName("DescribeThingGroup");
        groups.MapMethods("/{thingGroupName}", ["PATCH"], UpdateThingGroupAsync).WithName("UpdateThingGroup");
        groups.MapDelete("/{thingGroupName}", DeleteThingGroupAsync).WithName("DeleteThingGroup");
        groups.MapGet("", ListThingGroupsAsync).WithName("ListThingGroups");
        groups.MapGet("/{thingGroupName}/things", ListThingsInThingGroupAsync).WithName("ListThingsInThingGroup");
        return endpoints;
    }

    // ---- things ----

    public sealed record CreateThingBody(string? ThingTypeName, AttributePayloadBody? AttributePayload);

    public sealed record AttributePayloadBody(Dictionary<string, string>? Attributes, bool? Merge);

    public sealed record UpdateThingBody(string? ThingTypeName, AttributePayloadBody? AttributePayload, long? ExpectedVersion, bool? RemoveThingType);

    private static async Task<IResult> CreateThingAsync(string thingName, CreateThingBody? body, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var thing = await grains.GetGrain<IThingGrain>(thingName).CreateThing(body?.ThingTypeName, body?.AttributePayload?.Attributes);
        return TypedResults.Ok(new { thingName = thing.ThingName, thingArn = options.Value.Arn($"thing/{thing.ThingName}"), thingId = thing.ThingId });
    }

    private static async Task<IResult> DescribeThingAsync(string thingName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var thing = await grains.GetGrain<IThingGrain>(thingName).DescribeThing();
        return thing is null
            ? Problems.NotFound("ResourceNotFoundException", $"Thing {thingName} cannot be found.")
            : TypedResults.Ok(new
            {
                defaultClientId = thing.ThingName,
                thingName = thing.ThingName,
                thingId = thing.ThingId,
                thingArn = options.Value.Arn($"thing/{thing.ThingName}"),
                thingTypeName = thing.ThingTypeName,
                attributes = thing.Attributes,
                version = thing.Version,
            });
    }

    private static async Task<IResult> UpdateThingAsync(string thingName, UpdateThingBody body, IGrainFactory grains)
    {
        await grains.GetGrain<IThingGrain>(thingName).UpdateThing(new ThingUpdate(body.ThingTypeName, Payload(body.AttributePayload), body.ExpectedVersion, body.RemoveThingType == true));
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> DeleteThingAsync(string thingName, long? expectedVersion, IGrainFactory grains)
    {
        await grains.GetGrain<IThingGrain>(thingName).DeleteThing(expectedVersion);
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> ListThingsAsync(
        string? nextToken, int? maxResults, string? attributeName, string? attributeValue, string? thingTypeName, bool? usePrefixAttributeValue,
        IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var page = await grains.GetGrain<IRegistryQueryGrain>(0).ListThings(
            new ThingQuery(attributeName, attributeValue, usePrefixAttributeValue == true, thingTypeName, nextToken, maxResults ?? 0));
        return TypedResults.Ok(new
        {
            things = page.Items.Select(t => new { thingName = t.ThingName, thingTypeName = t.ThingTypeName, thingArn = options.Value.Arn($"thing/{t.ThingName}"), attributes = t.Attributes, version = t.Version }),
            nextToken = page.NextToken,
        });
    }

    private static async Task<IResult> ListThingGroupsForThingAsync(string thingName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var groups = await grains.GetGrain<IThingGrain>(thingName).ListThingGroups();
        return TypedResults.Ok(new { thingGroups = groups.Select(g => GroupName(g.ThingGroupName, options.Value)) });
    }

    // ---- thing types ----

    public sealed record CreateThingTypeBody(ThingTypePropertiesBody? ThingTypeProperties);

    public sealed record ThingTypePropertiesBody(string? ThingTypeDescription, List<string>? SearchableAttributes);

    public sealed record DeprecateThingTypeBody(bool? UndoDeprecate);

    private static async Task<IResult> CreateThingTypeAsync(string thingTypeName, CreateThingTypeBody? body, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var type = await grains.GetGrain<IThingTypeGrain>(thingTypeName).Create(body?.ThingTypeProperties?.ThingTypeDescription, body?.ThingTypeProperties?.SearchableAttributes);
        return TypedResults.Ok(new { thingTypeName = type.ThingTypeName, thingTypeArn = options.Value.Arn($"thingtype/{type.ThingTypeName}"), thingTypeId = type.ThingTypeId });
    }

    private static async Task<IResult> DescribeThingTypeAsync(string thingTypeName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var type = await grains.GetGrain<IThingTypeGrain>(thingTypeName).Describe();
        return type is null
            ? Problems.NotFound("ResourceNotFoundException", $"Thing type {thingTypeName} cannot be found.")
            : TypedResults.Ok(TypeDocument(type, options.Value));
    }

    private static async Task<IResult> DeprecateThingTypeAsync(string thingTypeName, DeprecateThingTypeBody? body, IGrainFactory grains)
    {
        await grains.GetGrain<IThingTypeGrain>(thingTypeName).Deprecate(body?.UndoDeprecate == true);
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> DeleteThingTypeAsync(string thingTypeName, IGrainFactory grains)
    {
        await grains.GetGrain<IThingTypeGrain>(thingTypeName).Delete();
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> ListThingTypesAsync(string? thingTypeName, string? nextToken, int? maxResults, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var page = await grains.GetGrain<IRegistryQueryGrain>(0).ListThingTypes(thingTypeName, nextToken, maxResults ?? 0);
        return TypedResults.Ok(new { thingTypes = page.Items.Select(t => TypeDocument(t, options.Value)), nextToken = page.NextToken });
    }

    private static object TypeDocument(ThingTypeRecord type, RegistryOptions options) => new
    {
        thingTypeName = type.ThingTypeName,
        thingTypeId = type.ThingTypeId,
        thingTypeArn = options.Arn($"thingtype/{type.ThingTypeName}"),
        thingTypeProperties = new { thingTypeDescription = type.Description, searchableAttributes = type.SearchableAttributes },
        thingTypeMetadata = new { deprecated = type.Deprecated, deprecationDate = type.DeprecationDate?.ToUnixTimeSeconds(), creationDate = type.CreationDate.ToUnixTimeSeconds() },
    };

    // ---- thing groups ----

    public sealed record CreateThingGroupBody(string? ParentGroupName, ThingGroupPropertiesBody? ThingGroupProperties);

    public sealed record ThingGroupPropertiesBody(string? ThingGroupDescription, AttributePayloadBody? AttributePayload);

    public sealed record UpdateThingGroupBody(ThingGroupPropertiesBody? ThingGroupProperties, long? ExpectedVersion);

    public sealed record MembershipBody(string? ThingGroupName, string? ThingName);

    private static async Task<IResult> CreateThingGroupAsync(string thingGroupName, CreateThingGroupBody? body, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var group = await grains.GetGrain<IThingGroupGrain>(thingGroupName).Create(
            body?.ParentGroupName, body?.ThingGroupProperties?.ThingGroupDescription, body?.ThingGroupProperties?.AttributePayload?.Attributes);
        return TypedResults.Ok(new { thingGroupName = group.ThingGroupName, thingGroupArn = options.Value.Arn($"thinggroup/{group.ThingGroupName}"), thingGroupId = group.ThingGroupId });
    }

    private static async Task<IResult> DescribeThingGroupAsync(string thingGroupName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var group = await grains.GetGrain<IThingGroupGrain>(thingGroupName).Describe();
        if (group is null)
        {
            return Problems.NotFound("ResourceNotFoundException", $"Thing group {thingGroupName} cannot be found.");
        }

        var o = options.Value;
        return TypedResults.Ok(new
        {
            thingGroupName = group.ThingGroupName,
            thingGroupId = group.ThingGroupId,
            thingGroupArn = o.Arn($"thinggroup/{group.ThingGroupName}"),
            version = group.Version,
            thingGroupProperties = new { thingGroupDescription = group.Description, attributePayload = new { attributes = group.Attributes } },
            thingGroupMetadata = new
            {
                parentGroupName = group.ParentGroupName,
                rootToParentThingGroups = group.Ancestors.Select(a => GroupName(a, o)),
                creationDate = group.CreationDate.ToUnixTimeSeconds(),
            },
        });
    }

    private static async Task<IResult> UpdateThingGroupAsync(string thingGroupName, UpdateThingGroupBody body, IGrainFactory grains)
    {
        var group = await grains.GetGrain<IThingGroupGrain>(thingGroupName).Update(
            body.ThingGroupProperties?.ThingGroupDescription, Payload(body.ThingGroupProperties?.AttributePayload), body.ExpectedVersion);
        return TypedResults.Ok(new { version = group.Version });
    }

    private static async Task<IResult> DeleteThingGroupAsync(string thingGroupName, long? expectedVersion, IGrainFactory grains)
    {
        await grains.GetGrain<IThingGroupGrain>(thingGroupName).Delete(expectedVersion);
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> ListThingGroupsAsync(
        string? parentGroup, string? namePrefixFilter, bool? recursive, string? nextToken, int? maxResults, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var page = await grains.GetGrain<IRegistryQueryGrain>(0).ListThingGroups(parentGroup, namePrefixFilter, recursive == true, nextToken, maxResults ?? 0);
        return TypedResults.Ok(new { thingGroups = page.Items.Select(g => GroupName(g.ThingGroupName, options.Value)), nextToken = page.NextToken });
    }

    private static async Task<IResult> AddThingToThingGroupAsync(MembershipBody body, IGrainFactory grains, HttpContext context)
    {
        var (group, thing) = Membership(body);
        AuditApi.Target(context, $"thingGroupName={group},thingName={thing}");
        await grains.GetGrain<IThingGrain>(thing).AddToThingGroup(group);
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> RemoveThingFromThingGroupAsync(MembershipBody body, IGrainFactory grains, HttpContext context)
    {
        var (group, thing) = Membership(body);
        AuditApi.Target(context, $"thingGroupName={group},thingName={thing}");
        await grains.GetGrain<IThingGrain>(thing).RemoveFromThingGroup(group);
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> ListThingsInThingGroupAsync(string thingGroupName, bool? recursive, string? nextToken, int? maxResults, IGrainFactory grains)
    {
        var page = await grains.GetGrain<IRegistryQueryGrain>(0).ListThingsInThingGroup(thingGroupName, recursive == true, nextToken, maxResults ?? 0);
        return TypedResults.Ok(new { things = page.Items, nextToken = page.NextToken });
    }

    private static (string Group, string Thing) Membership(MembershipBody body) =>
        body is { ThingGroupName: { Length: > 0 } group, ThingName: { Length: > 0 } thing }
            ? (group, thing)
            : throw ApiException.Invalid("thingGroupName and thingName are required.");

    private static object GroupName(string name, RegistryOptions options) => new { groupName = name, groupArn = options.Arn($"thinggroup/{name}") };

    private static AttributePayload? Payload(AttributePayloadBody? body) =>
        body is null ? null : new AttributePayload(body.Attributes, body.Merge == true);
}
