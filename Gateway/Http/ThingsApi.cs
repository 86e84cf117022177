using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>Control plane: a thing's connectivity and usage (ours; AWS shows connectivity through fleet indexing). The registry is <see cref="RegistryApi"/>.</summary>
public static class ThingsApi
{
    public static IEndpointRouteBuilder MapThingsApi(this IEndpointRouteBuilder endpoints)
    {
        var things = endpoints.MapGroup("/api/things").WithTags("Things").ChangedBy(ApiKeyRoles.Operator);
        things.MapGet("/{thingName}/status", GetThingStatusAsync).WithName("GetThingStatus");
        return endpoints;
    }

    private static async Task<Results<Ok<ThingStatus>, ProblemHttpResult>> GetThingStatusAsync(string thingName, IGrainFactory grains)
    {
        var status = await grains.GetGrain<IThingGrain>(thingName).GetStatus();
        return status is null
            ? Problems.NotFound("ResourceNotFoundException", $"Thing {thingName} cannot be found.")
            : TypedResults.Ok(status);
    }
}
