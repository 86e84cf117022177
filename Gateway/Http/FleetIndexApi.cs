using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.ApiKeys;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Fleet indexing with AWS's paths and shapes (under <c>/api</c>): <c>SearchIndex</c>, <c>GetStatistics</c>,
/// <c>GetCardinality</c>, <c>GetPercentiles</c>, <c>GetBucketsAggregation</c>, the indexing configuration, the index's
/// description and a rebuild (ours), and dynamic thing groups. Queries are checked and run by the grains; their
/// errors (<c>InvalidQueryException</c>, <c>InvalidAggregationException</c>, …) become problem+json.
/// </summary>
public static class FleetIndexApi
{
    public static IEndpointRouteBuilder MapFleetIndexApi(this IEndpointRouteBuilder endpoints)
    {
        var indices = endpoints.MapGroup("/indices").WithTags("Fleet index").ChangedBy(ApiKeyRoles.Operator);
        indices.MapPost("/search", SearchIndexAsync).WithName("SearchIndex").ReadOnly();
        indices.MapPost("/statistics", GetStatisticsAsync).WithName("GetStatistics").ReadOnly();
        indices.MapPost("/cardinality", GetCardinalityAsync).WithName("GetCardinality").ReadOnly();
        indices.MapPost("/percentiles", GetPercentilesAsync).WithName("GetPercentiles").ReadOnly();
        indices.MapPost("/buckets", GetBucketsAggregationAsync).WithName("GetBucketsAggregation").ReadOnly();
        indices.MapGet("", ListIndices).WithName("ListIndices");
        indices.MapGet("/{indexName}", DescribeIndexAsync).WithName("DescribeIndex");
        indices.MapPost("/{indexName}/rebuild", RebuildIndexAsync).WithName("RebuildIndex");

        var config = endpoints.MapGroup("/indexing").WithTags("Fleet index").ChangedBy(ApiKeyRoles.Operator);
        config.MapGet("/config", GetIndexingConfigurationAsync).WithName("GetIndexingConfiguration");
        config.MapPost("/config", UpdateIndexingConfigurationAsync).WithName("UpdateIndexingConfiguration");

        var groups = endpoints.MapGroup("/dynamic-thing-groups").WithTags("Registry").ChangedBy(ApiKeyRoles.Operator);
        groups.MapPost("/{thingGroupName}", CreateDynamicThingGroupAsync).WithName("CreateDynamicThingGroup");
        groups.MapMethods("/{thingGroupName}", ["PATCH"], UpdateDynamicThingGroupAsync).WithName("UpdateDynamicThingGroup");
        groups.MapDelete("/{thingGroupName}", DeleteDynamicThingGroupAsync).WithName("DeleteDynamicThingGroup");
        return endpoints;
    }

    // ---- search and aggregations ----

    public sealed record SearchIndexBody(string? IndexName, string? QueryString, string? NextToken, int? MaxResults, string? QueryVersion);

    public sealed record ThingConnectivity(
        bool Connected,
        long Timestamp,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? DisconnectReason);

    /// <summary>AWS <c>ThingDocument</c>; <c>shadow</c> is the shadow document as a JSON string, as AWS returns it.</summary>
    public sealed record ThingDocument(
        string ThingName,
        string ThingId,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? ThingTypeName,
        IReadOnlyList<string> ThingGroupNames,
        IReadOnlyDictionary<string, string> Attributes,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Shadow,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] ThingConnectivity? Connectivity);

    public sealed record SearchIndexResponse(IReadOnlyList<ThingDocument> Things, IReadOnlyList<JsonElement> ThingGroups, string? NextToken);

    public sealed record AggregationBody(string? IndexName, string? QueryString, string? AggregationField, string? QueryVersion, IReadOnlyList<double>? Percents, BucketsAggregationType? BucketsAggregationType);

    public sealed record BucketsAggregationType(TermsAggregation? TermsAggregation);

    public sealed record TermsAggregation(int? MaxBuckets);

    public sealed record StatisticsResponse(FleetStatistics Statistics);

    public sealed record CardinalityResponse(long Cardinality);

    public sealed record PercentilesResponse(IReadOnlyList<FleetPercentile> Percentiles);

    public sealed record BucketsResponse(long TotalCount, IReadOnlyList<FleetBucket> Buckets);

    private static async Task<Ok<SearchIndexResponse>> SearchIndexAsync(SearchIndexBody body, IGrainFactory grains)
    {
        var page = await Index(grains).Search(body.IndexName, body.QueryString, body.NextToken, body.MaxResults);
        return TypedResults.Ok(new SearchIndexResponse([.. page.Things.Select(Document)], [], page.NextToken));
    }

    private static async Task<Ok<StatisticsResponse>> GetStatisticsAsync(AggregationBody body, IGrainFactory grains) =>
        TypedResults.Ok(new StatisticsResponse(await Index(grains).Statistics(body.IndexName, body.QueryString, body.AggregationField)));

    private static async Task<Ok<CardinalityResponse>> GetCardinalityAsync(AggregationBody body, IGrainFactory grains) =>
        TypedResults.Ok(new CardinalityResponse(await Index(grains).Cardinality(body.IndexName, body.QueryString, body.AggregationField)));

    private static async Task<Ok<PercentilesResponse>> GetPercentilesAsync(AggregationBody body, IGrainFactory grains) =>
        TypedResults.Ok(new PercentilesResponse(await Index(grains).Percentiles(body.IndexName, body.QueryString, body.AggregationField, body.Percents)));

    private static async Task<Ok<BucketsResponse>> GetBucketsAggregationAsync(AggregationBody body, IGrainFactory grains)
    {
        var field = body.AggregationField ?? throw new ApiException(400, "InvalidAggregationException", "aggregationField is required.");
        var buckets = await Index(grains).Buckets(body.IndexName, body.QueryString, field, body.BucketsAggregationType?.TermsAggregation?.MaxBuckets);
        return TypedResults.Ok(new BucketsResponse(buckets.Sum(b => b.Count), buckets));
    }

    private static IFleetIndexGrain Index(IGrainFactory grains) => grains.GetGrain<IFleetIndexGrain>(0);

    private static ThingDocument Document(IndexedThingDocument thing)
    {
        using var registry = JsonDocument.Parse(thing.Registry);
        var r = registry.RootElement;
        ThingConnectivity? connectivity = null;
        if (thing.Connectivity is { } c)
        {
            using var doc = JsonDocument.Parse(c);
            var e = doc.RootElement;
            connectivity = new ThingConnectivity(
                e.GetProperty("connected").GetBoolean(),
                e.GetProperty("timestamp").GetInt64(),
                e.TryGetProperty("disconnectReason", out var reason) ? reason.GetString() : null);
        }

        return new ThingDocument(
            r.GetProperty("thingName").GetString()!,
            r.GetProperty("thingId").GetString()!,
            r.TryGetProperty("thingTypeName", out var type) ? type.GetString() : null,
            [.. r.GetProperty("thingGroupNames").EnumerateArray().Select(g => g.GetString()!)],
            r.GetProperty("attributes").EnumerateObject().ToDictionary(a => a.Name, a => a.Value.GetString() ?? "", StringComparer.Ordinal),
            thing.Shadow,
            connectivity);
    }

    // ---- the index and its configuration ----

    public sealed record ListIndicesResponse(IReadOnlyList<string> IndexNames, string? NextToken);

    public sealed record RebuildResponse(string IndexName, string IndexStatus, long? ThingsIndexed);

    public sealed record RebuildRequest(bool? Wait);

    public sealed record NamedShadowFilter(IReadOnlyList<string>? NamedShadowNames);

    public sealed record ThingIndexingConfiguration(
        string? ThingIndexingMode,
        string? ThingConnectivityIndexingMode,
        string? NamedShadowIndexingMode,
        string? DeviceDefenderIndexingMode,
        NamedShadowFilter? Filter,
        IReadOnlyList<IndexField>? CustomFields,
        IReadOnlyList<IndexField>? ManagedFields);

    public sealed record ThingGroupIndexingConfiguration(string? ThingGroupIndexingMode);

    public sealed record IndexingConfigurationBody(ThingIndexingConfiguration? ThingIndexingConfiguration, ThingGroupIndexingConfiguration? ThingGroupIndexingConfiguration);

    private static Ok<ListIndicesResponse> ListIndices() => TypedResults.Ok(new ListIndicesResponse(["AWS_Things"], null));

    private static async Task<Ok<IndexDescription>> DescribeIndexAsync(string indexName, IGrainFactory grains)
    {
        RequireThingIndex(indexName);
        return TypedResults.Ok(await grains.GetGrain<IFleetIndexAdminGrain>(0).Describe());
    }

    /// <summary>Ours: rebuilds the index from the registry, shadows and connectivity; with <c>wait=true</c> answers when done.</summary>
    private static async Task<Ok<RebuildResponse>> RebuildIndexAsync(string indexName, [AsParameters] RebuildRequest request, IGrainFactory grains)
    {
        RequireThingIndex(indexName);
        var admin = grains.GetGrain<IFleetIndexAdminGrain>(0);
        if (request.Wait == true)
        {
            return TypedResults.Ok(new RebuildResponse(indexName, "ACTIVE", await admin.RebuildAndWait()));
        }

        await admin.Rebuild();
        return TypedResults.Ok(new RebuildResponse(indexName, "REBUILDING", null));
    }

    private static async Task<Ok<IndexingConfigurationBody>> GetIndexingConfigurationAsync(IGrainFactory grains)
    {
        var c = await grains.GetGrain<IFleetIndexAdminGrain>(0).GetConfiguration();
        return TypedResults.Ok(new IndexingConfigurationBody(
            new ThingIndexingConfiguration(c.ThingIndexingMode, c.ThingConnectivityIndexingMode, c.NamedShadowIndexingMode, "OFF", new NamedShadowFilter(c.NamedShadowNames), c.CustomFields, ManagedFields(c)),
            new ThingGroupIndexingConfiguration("OFF")));
    }

    private static async Task<Ok<EmptyResponse>> UpdateIndexingConfigurationAsync(IndexingConfigurationBody body, IGrainFactory grains)
    {
        var admin = grains.GetGrain<IFleetIndexAdminGrain>(0);
        var current = await admin.GetConfiguration();
        var t = body.ThingIndexingConfiguration;
        var next = new IndexingConfiguration(
            t?.ThingIndexingMode ?? current.ThingIndexingMode,
            t?.ThingConnectivityIndexingMode ?? current.ThingConnectivityIndexingMode,
            t?.NamedShadowIndexingMode ?? current.NamedShadowIndexingMode,
            t?.Filter?.NamedShadowNames ?? current.NamedShadowNames,
            t?.CustomFields ?? current.CustomFields);
        if (t?.DeviceDefenderIndexingMode is { } defender && defender != "OFF")
        {
            throw ApiException.Invalid("deviceDefenderIndexingMode VIOLATIONS is not supported: there is no Device Defender here.");
        }

        if (body.ThingGroupIndexingConfiguration?.ThingGroupIndexingMode is { } groupMode && groupMode != "OFF")
        {
            throw ApiException.Invalid("thingGroupIndexingMode ON is not supported yet: only the thing index (AWS_Things) exists.");
        }

        await admin.UpdateConfiguration(next);   // the grain checks the modes, names and fields
        return EmptyResponse.Ok;
    }

    private static List<IndexField> ManagedFields(IndexingConfiguration c)
    {
        List<IndexField> fields = [new("thingName", "String"), new("thingId", "String"), new("thingTypeName", "String"), new("thingGroupNames", "String"), new("registry.version", "Number")];
        if (c.Connectivity)
        {
            fields.AddRange([new("connectivity.connected", "Boolean"), new("connectivity.timestamp", "Number"), new("connectivity.disconnectReason", "String")]);
        }

        if (c.Shadow)
        {
            fields.AddRange([new("shadow.version", "Number"), new("shadow.hasDelta", "Boolean")]);
        }

        return fields;
    }

    private static void RequireThingIndex(string indexName)
    {
        if (indexName != "AWS_Things")
        {
            throw ApiException.NotFound($"Index {indexName} cannot be found; the thing index is AWS_Things.");
        }
    }

    // ---- dynamic thing groups ----

    public sealed record DynamicGroupBody(
        RegistryApi.ThingGroupPropertiesBody? ThingGroupProperties, string? IndexName, string? QueryString, string? QueryVersion, long? ExpectedVersion);

    public sealed record CreateDynamicThingGroupResponse(
        string ThingGroupName, string ThingGroupArn, string ThingGroupId, string IndexName, string QueryString, string QueryVersion);

    public sealed record UpdateDynamicThingGroupResponse(long Version);

    private static async Task<Ok<CreateDynamicThingGroupResponse>> CreateDynamicThingGroupAsync(string thingGroupName, DynamicGroupBody body, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        RequireThingIndex(body.IndexName ?? "AWS_Things");
        var query = body.QueryString ?? throw ApiException.Invalid("queryString is required.");
        var group = await grains.GetGrain<IThingGroupGrain>(thingGroupName).CreateDynamic(
            query, body.ThingGroupProperties?.ThingGroupDescription, body.ThingGroupProperties?.AttributePayload?.Attributes);
        return TypedResults.Ok(new CreateDynamicThingGroupResponse(
            group.ThingGroupName, options.Value.Arn($"thinggroup/{group.ThingGroupName}"), group.ThingGroupId, "AWS_Things", group.QueryString!, body.QueryVersion ?? "2017-09-30"));
    }

    private static async Task<Ok<UpdateDynamicThingGroupResponse>> UpdateDynamicThingGroupAsync(string thingGroupName, DynamicGroupBody body, IGrainFactory grains)
    {
        RequireThingIndex(body.IndexName ?? "AWS_Things");
        var attributes = body.ThingGroupProperties?.AttributePayload is { } payload ? new AttributePayload(payload.Attributes, payload.Merge == true) : null;
        var group = await grains.GetGrain<IThingGroupGrain>(thingGroupName).UpdateDynamic(
            body.QueryString, body.ThingGroupProperties?.ThingGroupDescription, attributes, body.ExpectedVersion);
        return TypedResults.Ok(new UpdateDynamicThingGroupResponse(group.Version));
    }

    private static async Task<Ok<EmptyResponse>> DeleteDynamicThingGroupAsync(string thingGroupName, long? expectedVersion, IGrainFactory grains)
    {
        var thingGroup = grains.GetGrain<IThingGroupGrain>(thingGroupName);
        if (await thingGroup.Describe() is { IsDynamic: false })
        {
            throw ApiException.Invalid($"Thing group {thingGroupName} is static; DeleteThingGroup deletes it.");
        }

        await thingGroup.Delete(expectedVersion);
        return EmptyResponse.Ok;
    }
}
