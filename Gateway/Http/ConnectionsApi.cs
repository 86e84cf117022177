using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Http;

/// <summary>AWS <c>DeleteConnection</c>: close a client's connection wherever in the cluster it is.</summary>
public static class ConnectionsApi
{
    public static IEndpointRouteBuilder MapConnectionsApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapDelete("/api/connections/{clientId}", DeleteConnectionAsync).WithTags("Connections").WithName("DeleteConnection");
        return endpoints;
    }

    private static async Task<Results<Ok, ProblemHttpResult>> DeleteConnectionAsync(string clientId, bool? cleanSession, bool? preventWillMessage, IGrainFactory grains)
    {
        if (clientId.Length == 0 || Encoding.UTF8.GetByteCount(clientId) > 128 || clientId.StartsWith('$'))
        {
            return Problems.BadRequest("InvalidRequestException", "clientId must be 1 to 128 bytes and must not start with '$'.");
        }

        if (preventWillMessage == true)
        {
            return Problems.BadRequest("InvalidRequestException", "preventWillMessage is not supported yet.");
        }

        // cleanSession: sessions end with their connection today (no persistent sessions yet), so both values agree.
        _ = cleanSession;
        var connection = await grains.GetGrain<IClientSessionGrain>(clientId).GetConnection();
        if (connection is null || !await connection.Node.Reference.DisconnectClient(clientId, connection.SessionId, DisconnectReasons.ApiInitiated))
        {
            return Problems.NotFound("ResourceNotFoundException", $"No connection with client id {clientId}.");
        }

        return TypedResults.Ok();
    }
}
