using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Gateway.Mqtt;

namespace OrleansIot.Gateway.Http;

/// <summary>Liveness for load balancers and scripts: answers once the node accepts MQTT connections.</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/health", Health).WithTags("Health").WithName("Health");
        return endpoints;
    }

    /// <summary>The node's name, its id in the cluster (unique per process run) and its live MQTT connections.</summary>
    public sealed record HealthResponse(string Status, string Node, string NodeId, int Connections);

    private static Results<Ok<HealthResponse>, ProblemHttpResult> Health(MQTTnet.Server.MqttServer mqtt, Hosting.NodeIdentity node, LiveConnections connections, Routing.ClusterRouter router) =>
        mqtt.IsStarted
            ? TypedResults.Ok(new HealthResponse("ok", node.Name, router.NodeId, connections.Count))
            : TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Starting", detail: "The MQTT server is not started yet.");
}
