using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Audit;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// The audit log (our CloudTrail): every state-changing control-plane call under <c>/api</c> is recorded after it is
/// answered (operation = the endpoint's AWS name, target = the path's values, outcome = the status), and read with
/// <c>GET /api/audit?from&amp;to&amp;operation&amp;principal&amp;maxResults&amp;nextToken</c>, newest first. Request bodies are
/// never recorded. Calls that only read (GET, and the few POSTs AWS uses for reads) and queue data-plane calls
/// are not recorded.
/// </summary>
public static class AuditApi
{
    /// <summary>Marks calls that move data rather than configuration (the queues' send, receive, delete): not audited.</summary>
    public sealed class NotAuditedCall
    {
        public static readonly NotAuditedCall Instance = new();
    }

    /// <summary>This endpoint's calls are not recorded (data-plane calls; reads never are).</summary>
    public static TBuilder NotAudited<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(NotAuditedCall.Instance);

    /// <summary>Records audited calls; add before the exception handler so the final status is seen.</summary>
    public static IApplicationBuilder UseAuditLog(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        // Read before the call: the exception handler clears the endpoint and route values when it answers a failed request.
        var endpoint = context.GetEndpoint();
        var name = endpoint?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName;
        var pathTarget = string.Join(",", context.Request.RouteValues.Select(v => $"{v.Key}={v.Value}"));
        try
        {
            await next(context);
        }
        finally
        {
            var request = context.Request;
            if (name is not null && !ApiAccess.IsRead(endpoint!, request.Method) && endpoint!.Metadata.GetMetadata<NotAuditedCall>() is null
                && request.Path.StartsWithSegments("/api", StringComparison.Ordinal))
            {
                context.RequestServices.GetRequiredService<Security.AuditTrail>().Record(
                    context.User.FindFirst(ApiAuthentication.PrincipalClaim)?.Value ?? "anonymous",
                    name,
                    context.Items.TryGetValue(TargetKey, out var named) && named is string given ? given : pathTarget,
                    context.Connection.RemoteIpAddress?.ToString(),
                    context.Response.StatusCode);
            }
        }
    });

    /// <summary>
    /// Where an endpoint whose target is not in its path (it is in the body, or made by the call) names it for the
    /// audit log (<c>HttpContext.Items</c>), e.g. <c>templateName=t1</c>.
    /// </summary>
    public const string TargetKey = "iot.audit.target";

    /// <summary>Names the call's target for the audit log when the path does not.</summary>
    public static void Target(HttpContext context, string target)
    {
        ArgumentNullException.ThrowIfNull(context);
        context.Items[TargetKey] = target;
    }

    public static IEndpointRouteBuilder MapAuditApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/audit", LookupEventsAsync).WithTags("Audit").WithName("LookupEvents").ChangedBy(Grains.Abstractions.ApiKeys.ApiKeyRoles.Admin);
        return endpoints;
    }

    public sealed record LookupEventsRequest(string? From, string? To, string? Operation, string? Principal, string? NextToken, int? MaxResults);

    public sealed record AuditEvent(string EventTime, string Principal, string Operation, string Target, string? SourceAddress, int Status);

    public sealed record LookupEventsResponse(IReadOnlyList<AuditEvent> Events, string? NextToken);

    private static async Task<Ok<LookupEventsResponse>> LookupEventsAsync([AsParameters] LookupEventsRequest request, IGrainFactory grains, TimeProvider time)
    {
        var to = QueryValues.Instant(request.To, "to", time.GetUtcNow().AddMinutes(1));
        var from = QueryValues.Instant(request.From, "from", to.AddDays(-1));
        var max = QueryValues.Range(request.MaxResults, "maxResults", 100, 1, 1000);
        var page = await grains.GetGrain<IAuditGrain>(0).Query(
            from, to, QueryValues.Optional(request.Operation), QueryValues.Optional(request.Principal), QueryValues.Optional(request.NextToken), max);
        return TypedResults.Ok(new LookupEventsResponse(
            [.. page.Records.Select(r => new AuditEvent(JsonText.Instant(r.Time), r.Principal, r.Operation, r.Target, r.SourceAddress, r.Status))],
            page.NextToken));
    }
}
