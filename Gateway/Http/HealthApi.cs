using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Gateway.Mqtt;

namespace OrleansIot.Gateway.Http;

/// <summary>Liveness for load balancers and scripts: answers once the node accepts MQTT connections.</summary>
public static class HealthApi
{
    public static IEndpointRouteBuilder MapHealthApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/health", (MQTTnet.Server.MqttServer mqtt, Hosting.NodeIdentity node, LiveConnections connections, Routing.ClusterRouter router) =>
        {
            return mqtt.IsStarted
                ? Results.Ok(new { status = "ok", node = node.Name, nodeId = router.NodeId, connections = connections.Count })
                : Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Starting", detail: "The MQTT server is not started yet.");
        }).WithTags("Health").WithName("Health");
        return endpoints;
    }
}
