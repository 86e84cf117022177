using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// AWS <c>DeleteConnection</c>: close a client's connection wherever in the cluster it is; and (our addition, as
/// EMQX's client API) a persistent session's state: host node, subscriptions, queued messages.
/// </summary>
public static class ConnectionsApi
{
    public static IEndpointRouteBuilder MapConnectionsApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapDelete("/api/connections/{clientId}", DeleteConnectionAsync).WithTags("Connections").WithName("DeleteConnection");
        endpoints.MapGet("/api/sessions/{clientId}", GetSessionAsync).WithTags("Connections").WithName("GetSession");
        endpoints.MapGet("/api/nodes/{nodeId}/clients", GetNodeClientsAsync).WithTags("Connections").WithName("GetNodeClients");
        return endpoints;
    }

    /// <summary>
    /// The client ids a node has listed as hosted (written in batches, <c>Iot:Sessions:HostListFlushInterval</c>): what a
    /// live node adopts if that node dies. A node id is the one in <c>/health</c> (unique per process run; it holds a
    /// '/', so callers escape it: routing leaves an escaped '/' as it is, and it is unescaped here).
    /// </summary>
    private static async Task<Ok<IReadOnlyList<HostedSession>>> GetNodeClientsAsync(string nodeId, IGrainFactory grains) =>
        TypedResults.Ok(await grains.GetGrain<INodeSessionsGrain>(Uri.UnescapeDataString(nodeId)).Get());

    private static async Task<Results<Ok<SessionInfo>, ProblemHttpResult>> GetSessionAsync(string clientId, IGrainFactory grains)
    {
        var session = await grains.GetGrain<IClientSessionGrain>(clientId).GetSession();
        return session is null
            ? Problems.NotFound("ResourceNotFoundException", $"No persistent session for client id {clientId}.")
            : TypedResults.Ok(session);
    }

    private static async Task<Results<Ok, ProblemHttpResult>> DeleteConnectionAsync(string clientId, bool? cleanSession, bool? preventWillMessage, IGrainFactory grains, Routing.ClusterRouter router)
    {
        if (clientId.Length == 0 || Encoding.UTF8.GetByteCount(clientId) > 128 || clientId.StartsWith('$'))
        {
            return Problems.BadRequest("InvalidRequestException", "clientId must be 1 to 128 bytes and must not start with '$'.");
        }

        var connection = await grains.GetGrain<IClientSessionGrain>(clientId).GetConnection();
        var options = new DisconnectOptions(PreventWill: preventWillMessage == true, EndSession: cleanSession == true);
        if (connection is null || router.Resolve(connection.NodeId) is not { } node
            || !await node.DisconnectClient(clientId, connection.SessionId, DisconnectReasons.ApiInitiated, options))
        {
            return Problems.NotFound("ResourceNotFoundException", $"No connection with client id {clientId}.");
        }

        return TypedResults.Ok();
    }
}
