using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Options;
using MQTTnet.Server;
using OpenTelemetry.Metrics;
using OrleansIot.Gateway.Http;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Hosting;

/// <summary>
/// What operators and orchestrators read: <c>/metrics</c> (OpenTelemetry's Prometheus exporter over our meters,
/// Orleans' and the runtime's), <c>/healthz</c> (the process answers) and <c>/readyz</c> (every check tagged
/// <see cref="ReadyTag"/> passes: the MQTT listener here; the silo adds cluster membership and storage).
/// </summary>
public static class Observability
{
    public const string MetricsPath = "/metrics";
    public const string LivenessPath = "/healthz";
    public const string ReadinessPath = "/readyz";

    /// <summary>The tag of the health checks <c>/readyz</c> runs.</summary>
    public const string ReadyTag = "ready";

    /// <summary>
    /// The meters exported: ours (<c>OrleansIot.*</c>), Orleans' (<c>Microsoft.Orleans</c>: grain calls, activations,
    /// messaging, streams) and the runtime's (<c>System.Runtime</c>: GC, heap, thread pool, exceptions), plus Kestrel's
    /// connection counts.
    /// </summary>
    public static readonly string[] Meters = ["OrleansIot.*", "Microsoft.Orleans", "System.Runtime", "Microsoft.AspNetCore.Server.Kestrel"];

    internal static IServiceCollection AddObservability(this IServiceCollection services, MetricsOptions metrics)
    {
        services.AddHealthChecks().AddCheck<MqttListening>("mqtt", tags: [ReadyTag]);
        if (metrics.Enabled)
        {
            services.AddOpenTelemetry().WithMetrics(builder => builder
                .AddMeter(Meters)
                .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));   // every scrape is current
        }

        return services;
    }

    internal static WebApplication MapObservability(this WebApplication app)
    {
        var metrics = app.Services.GetRequiredService<IOptions<MetricsOptions>>().Value;
        if (metrics.Enabled)
        {
            // Prometheus text, not the JSON API: GET only, and not in the OpenAPI document.
            var scrape = app.MapPrometheusScrapingEndpoint(MetricsPath)
                .WithMetadata(new HttpMethodMetadata([HttpMethods.Get]))
                .ExcludeFromDescription()
                .WithName("Metrics");
            if (metrics.AllowAnonymous)
            {
                scrape.AllowAnonymous();
            }
            else
            {
                scrape.ChangedBy(ApiKeyRoles.Operator);   // a GET: any API key reads
            }
        }

        app.MapGet(LivenessPath, (NodeIdentity node) => TypedResults.Ok(new Liveness("alive", node.Name)))
            .AllowAnonymous().WithTags("Observability").WithName("Liveness");
        app.MapGet(ReadinessPath, ReadinessAsync).AllowAnonymous().WithTags("Observability").WithName("Readiness")
            .Produces<Readiness>().Produces<Readiness>(StatusCodes.Status503ServiceUnavailable);
        return app;
    }

    /// <summary>The process answers (it may not be ready for devices yet: <c>/readyz</c>).</summary>
    public sealed record Liveness(string Status, string Node);

    /// <summary>Whether the node is ready, and each check's outcome (the failing one says why).</summary>
    public sealed record Readiness(string Status, IReadOnlyDictionary<string, ReadinessCheck> Checks);

    public sealed record ReadinessCheck(string Status, string? Description, double Ms);

    /// <summary>200 when every check tagged <see cref="ReadyTag"/> passes, else 503; both with the checks' outcomes.</summary>
    private static async Task<JsonHttpResult<Readiness>> ReadinessAsync(HealthCheckService health, CancellationToken cancellationToken)
    {
        var report = await health.CheckHealthAsync(check => check.Tags.Contains(ReadyTag), cancellationToken);
        var ready = report.Status == HealthStatus.Healthy;
        var checks = report.Entries.ToDictionary(
            e => e.Key,
            e => new ReadinessCheck(e.Value.Status.ToString(), e.Value.Description ?? e.Value.Exception?.Message, Math.Round(e.Value.Duration.TotalMilliseconds, 1)));
        return TypedResults.Json(new Readiness(ready ? "ready" : "not ready", checks), statusCode: ready ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }

    /// <summary>Ready for devices: the MQTT server has started.</summary>
    private sealed class MqttListening(MqttServer mqtt) : IHealthCheck
    {
        public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
            Task.FromResult(mqtt.IsStarted ? HealthCheckResult.Healthy("accepting MQTT connections") : HealthCheckResult.Unhealthy("the MQTT server has not started"));
    }
}
