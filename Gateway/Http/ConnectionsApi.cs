using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions;
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
        var api = endpoints.MapGroup("").WithTags("Connections").ChangedBy(Grains.Abstractions.ApiKeys.ApiKeyRoles.Operator);
        api.MapGet("/connections/{clientId}", GetConnectionAsync).WithName("GetConnection");
        api.MapDelete("/connections/{clientId}", DeleteConnectionAsync).WithName("DeleteConnection");
        api.MapGet("/sessions/{clientId}", GetSessionAsync).WithName("GetSession");
        api.MapGet("/nodes", ListNodesAsync).WithName("ListNodes");
        api.MapGet("/nodes/{nodeId}/clients", GetNodeClientsAsync).WithName("GetNodeClients");
        return endpoints;
    }

    public sealed record ListNodesResponse(IReadOnlyList<Grains.Abstractions.Routing.NodeStats> Nodes);

    /// <summary>
    /// The cluster's nodes as they last reported (every <c>Iot:Routing:StatsInterval</c>): connections, broker counters
    /// and message rates. A node that missed three reports is not listed.
    /// </summary>
    private static async Task<Ok<ListNodesResponse>> ListNodesAsync(IGrainFactory grains, Microsoft.Extensions.Options.IOptions<Routing.RoutingOptions> options) =>
        TypedResults.Ok(new ListNodesResponse(await grains.GetGrain<Grains.Abstractions.Routing.INodeStatsGrain>(0).List(options.Value.StatsInterval * 3)));

    /// <summary>
    /// The client ids a node has listed as hosted (written in batches, <c>Iot:Sessions:HostListFlushInterval</c>): what a
    /// live node adopts if that node dies. A node id is the one in <c>/health</c> (unique per process run; it holds a
    /// '/', so callers escape it: routing leaves an escaped '/' as it is, and it is unescaped here).
    /// </summary>
    private static async Task<Ok<IReadOnlyList<HostedSession>>> GetNodeClientsAsync(string nodeId, IGrainFactory grains) =>
        TypedResults.Ok(await Sessions.HostList.ReadAsync(grains, Uri.UnescapeDataString(nodeId)));

    private static async Task<Ok<SessionInfo>> GetSessionAsync(string clientId, IGrainFactory grains, Routing.ClusterRouter router)
    {
        var grain = grains.Reference<IClientSessionGrain>(clientId);
        var session = await grain.GetSession();
        if (session is null)
        {
            throw ApiException.NotFound($"No persistent session for client id {clientId}.");
        }

        return TypedResults.Ok(session.Connected && await grain.GetConnection() is { } connection
            ? session with { Delivery = await DeliveryAsync(clientId, connection, router) }
            : session);
    }

    /// <summary>
    /// A live connection (any session kind; EMQX's client API): where it is, since when, and how delivery to it stands:
    /// queued, in flight, its window, and messages dropped because it read more slowly than its publishers wrote.
    /// </summary>
    private static async Task<Ok<ConnectionStatus>> GetConnectionAsync(string clientId, IGrainFactory grains, Routing.ClusterRouter router)
    {
        var connection = await grains.ConnectionDirectoryOf(clientId).Get(clientId);
        var delivery = connection is null ? null : await DeliveryAsync(clientId, connection, router);
        return connection is null || delivery is null
            ? throw ApiException.NotFound($"No connection with client id {clientId}.")
            : TypedResults.Ok(new ConnectionStatus(clientId, connection.NodeId, connection.SessionId, connection.Since, delivery));
    }

    private static async Task<ConnectionDelivery?> DeliveryAsync(string clientId, ClientConnection connection, Routing.ClusterRouter router)
    {
        try
        {
            return router.Resolve(connection.NodeId) is { } node ? await node.GetDelivery(clientId, connection.SessionId) : null;
        }
        catch (Exception ex) when (ex is OrleansException or TimeoutException)
        {
            return null;   // its node is going away: no live connection to report
        }
    }

    public sealed record ConnectionStatus(string ClientId, string NodeId, string SessionId, DateTimeOffset Since, ConnectionDelivery Delivery);

    private static async Task<Ok> DeleteConnectionAsync(string clientId, bool? cleanSession, bool? preventWillMessage, IGrainFactory grains, Routing.ClusterRouter router)
    {
        if (clientId.Length == 0 || Encoding.UTF8.GetByteCount(clientId) > 128 || clientId.StartsWith('$'))
        {
            throw ApiException.Invalid("clientId must be 1 to 128 bytes and must not start with '$'.");
        }

        var connection = await grains.ConnectionDirectoryOf(clientId).Get(clientId);
        var options = new DisconnectOptions(PreventWill: preventWillMessage == true, EndSession: cleanSession == true);
        if (connection is null || router.Resolve(connection.NodeId) is not { } node
            || !await node.DisconnectClient(clientId, connection.SessionId, DisconnectReasons.ApiInitiated, options))
        {
            throw ApiException.NotFound($"No connection with client id {clientId}.");
        }

        return TypedResults.Ok();
    }
}
