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
        var things = endpoints.MapGroup("/things").WithTags("Registry").ChangedBy(ApiKeyRoles.Operator);
        things.MapPost("/{thingName}", CreateThingAsync).WithName("CreateThing");
        things.MapGet("/{thingName}", DescribeThingAsync).WithName("DescribeThing");
        things.MapMethods("/{thingName}", ["PATCH"], UpdateThingAsync).WithName("UpdateThing");
        things.MapDelete("/{thingName}", DeleteThingAsync).WithName("DeleteThing");
        things.MapGet("", ListThingsAsync).WithName("ListThings");
        things.MapGet("/{thingName}/thing-groups", ListThingGroupsForThingAsync).WithName("ListThingGroupsForThing");
        things.MapGet("/{thingName}/status", GetThingStatusAsync).WithName("GetThingStatus");

        var types = endpoints.MapGroup("/thing-types").WithTags("Registry").ChangedBy(ApiKeyRoles.Operator);
        types.MapPost("/{thingTypeName}", CreateThingTypeAsync).WithName("CreateThingType");
        types.MapGet("/{thingTypeName}", DescribeThingTypeAsync).WithName("DescribeThingType");
        types.MapPost("/{thingTypeName}/deprecate", DeprecateThingTypeAsync).WithName("DeprecateThingType");
        types.MapDelete("/{thingTypeName}", DeleteThingTypeAsync).WithName("DeleteThingType");
        types.MapGet("", ListThingTypesAsync).WithName("ListThingTypes");

        var groups = endpoints.MapGroup("/thing-groups").WithTags("Registry").ChangedBy(ApiKeyRoles.Operator);
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

    public sealed record ListThingsRequest(string? NextToken, int? MaxResults, string? AttributeName, string? AttributeValue, string? ThingTypeName, bool? UsePrefixAttributeValue);

    public sealed record CreateThingResponse(string ThingName, string ThingArn, string ThingId);

    public sealed record DescribeThingResponse(
        string DefaultClientId, string ThingName, string ThingId, string ThingArn, string? ThingTypeName, IReadOnlyDictionary<string, string> Attributes, long Version);

    public sealed record ThingSummary(string ThingName, string? ThingTypeName, string ThingArn, IReadOnlyDictionary<string, string> Attributes, long Version);

    public sealed record ListThingsResponse(IReadOnlyList<ThingSummary> Things, string? NextToken);

    public sealed record GroupNameAndArn(string GroupName, string GroupArn);

    public sealed record ListThingGroupsForThingResponse(IReadOnlyList<GroupNameAndArn> ThingGroups);

    private static async Task<Ok<CreateThingResponse>> CreateThingAsync(string thingName, CreateThingBody? body, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var thing = await grains.Reference<IThingGrain>(thingName).CreateThing(body?.ThingTypeName, body?.AttributePayload?.Attributes);
        return TypedResults.Ok(new CreateThingResponse(thing.ThingName, options.Value.Arn($"thing/{thing.ThingName}"), thing.ThingId));
    }

    private static async Task<Ok<DescribeThingResponse>> DescribeThingAsync(string thingName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var thing = await grains.Reference<IThingGrain>(thingName).DescribeThing() ?? throw ApiException.NotFound($"Thing {thingName} cannot be found.");
        return TypedResults.Ok(new DescribeThingResponse(
            thing.ThingName, thing.ThingName, thing.ThingId, options.Value.Arn($"thing/{thing.ThingName}"), thing.ThingTypeName, thing.Attributes, thing.Version));
    }

    private static async Task<Ok<EmptyResponse>> UpdateThingAsync(string thingName, UpdateThingBody body, IGrainFactory grains)
    {
        await grains.Reference<IThingGrain>(thingName).UpdateThing(new ThingUpdate(body.ThingTypeName, Payload(body.AttributePayload), body.ExpectedVersion, body.RemoveThingType == true));
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DeleteThingAsync(string thingName, long? expectedVersion, IGrainFactory grains)
    {
        await grains.Reference<IThingGrain>(thingName).DeleteThing(expectedVersion);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<ListThingsResponse>> ListThingsAsync([AsParameters] ListThingsRequest request, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var page = await grains.GetGrain<IRegistryQueryGrain>(0).ListThings(new ThingQuery(
            request.AttributeName, request.AttributeValue, request.UsePrefixAttributeValue == true, request.ThingTypeName, request.NextToken, request.MaxResults ?? 0));
        return TypedResults.Ok(new ListThingsResponse(
            [.. page.Items.Select(t => new ThingSummary(t.ThingName, t.ThingTypeName, options.Value.Arn($"thing/{t.ThingName}"), t.Attributes, t.Version))],
            page.NextToken));
    }

    private static async Task<Ok<ListThingGroupsForThingResponse>> ListThingGroupsForThingAsync(string thingName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var groups = await grains.Reference<IThingGrain>(thingName).ListThingGroups();
        return TypedResults.Ok(new ListThingGroupsForThingResponse([.. groups.Select(g => GroupName(g.ThingGroupName, options.Value))]));
    }

    /// <summary>A thing's connectivity and usage (ours; AWS shows connectivity through fleet indexing).</summary>
    private static async Task<Ok<ThingStatus>> GetThingStatusAsync(string thingName, IGrainFactory grains) =>
        TypedResults.Ok(await grains.Reference<IThingGrain>(thingName).GetStatus() ?? throw ApiException.NotFound($"Thing {thingName} cannot be found."));

    // ---- thing types ----

    public sealed record CreateThingTypeBody(ThingTypePropertiesBody? ThingTypeProperties);

    public sealed record ThingTypePropertiesBody(string? ThingTypeDescription, List<string>? SearchableAttributes);

    public sealed record DeprecateThingTypeBody(bool? UndoDeprecate);

    public sealed record ListThingTypesRequest(string? ThingTypeName, string? NextToken, int? MaxResults);

    public sealed record CreateThingTypeResponse(string ThingTypeName, string ThingTypeArn, string ThingTypeId);

    public sealed record ThingTypeProperties(string? ThingTypeDescription, IReadOnlyList<string> SearchableAttributes);

    public sealed record ThingTypeMetadata(bool Deprecated, long? DeprecationDate, long CreationDate);

    public sealed record ThingTypeDescription(string ThingTypeName, string ThingTypeId, string ThingTypeArn, ThingTypeProperties ThingTypeProperties, ThingTypeMetadata ThingTypeMetadata);

    public sealed record ListThingTypesResponse(IReadOnlyList<ThingTypeDescription> ThingTypes, string? NextToken);

    private static async Task<Ok<CreateThingTypeResponse>> CreateThingTypeAsync(string thingTypeName, CreateThingTypeBody? body, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var type = await grains.GetGrain<IThingTypeGrain>(thingTypeName).Create(body?.ThingTypeProperties?.ThingTypeDescription, body?.ThingTypeProperties?.SearchableAttributes);
        return TypedResults.Ok(new CreateThingTypeResponse(type.ThingTypeName, options.Value.Arn($"thingtype/{type.ThingTypeName}"), type.ThingTypeId));
    }

    private static async Task<Ok<ThingTypeDescription>> DescribeThingTypeAsync(string thingTypeName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var type = await grains.GetGrain<IThingTypeGrain>(thingTypeName).Describe() ?? throw ApiException.NotFound($"Thing type {thingTypeName} cannot be found.");
        return TypedResults.Ok(TypeDocument(type, options.Value));
    }

    private static async Task<Ok<EmptyResponse>> DeprecateThingTypeAsync(string thingTypeName, DeprecateThingTypeBody? body, IGrainFactory grains)
    {
        await grains.GetGrain<IThingTypeGrain>(thingTypeName).Deprecate(body?.UndoDeprecate == true);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DeleteThingTypeAsync(string thingTypeName, IGrainFactory grains)
    {
        await grains.GetGrain<IThingTypeGrain>(thingTypeName).Delete();
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<ListThingTypesResponse>> ListThingTypesAsync([AsParameters] ListThingTypesRequest request, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var page = await grains.GetGrain<IRegistryQueryGrain>(0).ListThingTypes(request.ThingTypeName, request.NextToken, request.MaxResults ?? 0);
        return TypedResults.Ok(new ListThingTypesResponse([.. page.Items.Select(t => TypeDocument(t, options.Value))], page.NextToken));
    }

    private static ThingTypeDescription TypeDocument(ThingTypeRecord type, RegistryOptions options) => new(
        type.ThingTypeName,
        type.ThingTypeId,
        options.Arn($"thingtype/{type.ThingTypeName}"),
        new ThingTypeProperties(type.Description, type.SearchableAttributes),
        new ThingTypeMetadata(type.Deprecated, type.DeprecationDate?.ToUnixTimeSeconds(), type.CreationDate.ToUnixTimeSeconds()));

    // ---- thing groups ----

    public sealed record CreateThingGroupBody(string? ParentGroupName, ThingGroupPropertiesBody? ThingGroupProperties);

    public sealed record ThingGroupPropertiesBody(string? ThingGroupDescription, AttributePayloadBody? AttributePayload);

    public sealed record UpdateThingGroupBody(ThingGroupPropertiesBody? ThingGroupProperties, long? ExpectedVersion);

    public sealed record MembershipBody(string? ThingGroupName, string? ThingName);

    public sealed record ListThingGroupsRequest(string? ParentGroup, string? NamePrefixFilter, bool? Recursive, string? NextToken, int? MaxResults);

    public sealed record ListThingsInThingGroupRequest(bool? Recursive, string? NextToken, int? MaxResults);

    public sealed record CreateThingGroupResponse(string ThingGroupName, string ThingGroupArn, string ThingGroupId);

    public sealed record ThingGroupAttributes(IReadOnlyDictionary<string, string> Attributes);

    public sealed record ThingGroupProperties(string? ThingGroupDescription, ThingGroupAttributes AttributePayload);

    public sealed record ThingGroupMetadata(string? ParentGroupName, IReadOnlyList<GroupNameAndArn> RootToParentThingGroups, long CreationDate);

    /// <summary>AWS <c>DescribeThingGroup</c>; a dynamic group also has its index, query and status.</summary>
    public sealed record DescribeThingGroupResponse(
        string ThingGroupName,
        string ThingGroupId,
        string ThingGroupArn,
        long Version,
        ThingGroupProperties ThingGroupProperties,
        ThingGroupMetadata ThingGroupMetadata,
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? IndexName = null,
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? QueryString = null,
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? QueryVersion = null,
        [property: System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)] string? Status = null);

    public sealed record UpdateThingGroupResponse(long Version);

    public sealed record ListThingGroupsResponse(IReadOnlyList<GroupNameAndArn> ThingGroups, string? NextToken);

    public sealed record ListThingsInThingGroupResponse(IReadOnlyList<string> Things, string? NextToken);

    private static async Task<Ok<CreateThingGroupResponse>> CreateThingGroupAsync(string thingGroupName, CreateThingGroupBody? body, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var group = await grains.GetGrain<IThingGroupGrain>(thingGroupName).Create(
            body?.ParentGroupName, body?.ThingGroupProperties?.ThingGroupDescription, body?.ThingGroupProperties?.AttributePayload?.Attributes);
        return TypedResults.Ok(new CreateThingGroupResponse(group.ThingGroupName, options.Value.Arn($"thinggroup/{group.ThingGroupName}"), group.ThingGroupId));
    }

    private static async Task<Ok<DescribeThingGroupResponse>> DescribeThingGroupAsync(string thingGroupName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var group = await grains.GetGrain<IThingGroupGrain>(thingGroupName).Describe() ?? throw ApiException.NotFound($"Thing group {thingGroupName} cannot be found.");
        var o = options.Value;
        return TypedResults.Ok(new DescribeThingGroupResponse(
            group.ThingGroupName,
            group.ThingGroupId,
            o.Arn($"thinggroup/{group.ThingGroupName}"),
            group.Version,
            new ThingGroupProperties(group.Description, new ThingGroupAttributes(group.Attributes)),
            new ThingGroupMetadata(group.ParentGroupName, [.. group.Ancestors.Select(a => GroupName(a, o))], group.CreationDate.ToUnixTimeSeconds()),
            group.IsDynamic ? "AWS_Things" : null,
            group.QueryString,
            group.IsDynamic ? "2017-09-30" : null,
            group.IsDynamic ? "ACTIVE" : null));
    }

    private static async Task<Ok<UpdateThingGroupResponse>> UpdateThingGroupAsync(string thingGroupName, UpdateThingGroupBody body, IGrainFactory grains)
    {
        var group = await grains.GetGrain<IThingGroupGrain>(thingGroupName).Update(
            body.ThingGroupProperties?.ThingGroupDescription, Payload(body.ThingGroupProperties?.AttributePayload), body.ExpectedVersion);
        return TypedResults.Ok(new UpdateThingGroupResponse(group.Version));
    }

    private static async Task<Ok<EmptyResponse>> DeleteThingGroupAsync(string thingGroupName, long? expectedVersion, IGrainFactory grains)
    {
        await grains.GetGrain<IThingGroupGrain>(thingGroupName).Delete(expectedVersion);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<ListThingGroupsResponse>> ListThingGroupsAsync([AsParameters] ListThingGroupsRequest request, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var page = await grains.GetGrain<IRegistryQueryGrain>(0).ListThingGroups(
            request.ParentGroup, request.NamePrefixFilter, request.Recursive == true, request.NextToken, request.MaxResults ?? 0);
        return TypedResults.Ok(new ListThingGroupsResponse([.. page.Items.Select(g => GroupName(g.ThingGroupName, options.Value))], page.NextToken));
    }

    private static async Task<Ok<EmptyResponse>> AddThingToThingGroupAsync(MembershipBody body, IGrainFactory grains, HttpContext context)
    {
        var (group, thing) = Membership(body);
        AuditApi.Target(context, $"thingGroupName={group},thingName={thing}");
        await grains.Reference<IThingGrain>(thing).AddToThingGroup(group);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> RemoveThingFromThingGroupAsync(MembershipBody body, IGrainFactory grains, HttpContext context)
    {
        var (group, thing) = Membership(body);
        AuditApi.Target(context, $"thingGroupName={group},thingName={thing}");
        await grains.Reference<IThingGrain>(thing).RemoveFromThingGroup(group);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<ListThingsInThingGroupResponse>> ListThingsInThingGroupAsync(string thingGroupName, [AsParameters] ListThingsInThingGroupRequest request, IGrainFactory grains)
    {
        var page = await grains.GetGrain<IRegistryQueryGrain>(0).ListThingsInThingGroup(thingGroupName, request.Recursive == true, request.NextToken, request.MaxResults ?? 0);
        return TypedResults.Ok(new ListThingsInThingGroupResponse(page.Items, page.NextToken));
    }

    private static (string Group, string Thing) Membership(MembershipBody body) =>
        body is { ThingGroupName: { Length: > 0 } group, ThingName: { Length: > 0 } thing }
            ? (group, thing)
            : throw ApiException.Invalid("thingGroupName and thingName are required.");

    private static GroupNameAndArn GroupName(string name, RegistryOptions options) => new(name, options.Arn($"thinggroup/{name}"));

    private static AttributePayload? Payload(AttributePayloadBody? body) =>
        body is null ? null : new AttributePayload(body.Attributes, body.Merge == true);
}
