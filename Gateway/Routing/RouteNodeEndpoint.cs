using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// This node as the other nodes call it (the grain observer registered in the route directory): a thin endpoint that
/// hands each call to the part of the gateway that owns it, so none of them has to be attached to the router.
/// </summary>
internal sealed class RouteNodeEndpoint(ClusterRouter router, Sessions.SessionHost sessions, Security.AccessChanges access, Retained.RetainedMessages retained, Telemetry.RuleTopics rules) : IRouteNode
{
    public Task Deliver(ForwardedBatch batch) => router.DeliverAsync(batch);

    public Task ApplyRoutes(RouteUpdate update) => router.ApplyRoutes(update);

    public Task<RouteUpdate> GetRoutes() => router.GetRoutes();

    public Task<bool> DisconnectClient(string clientId, string sessionId, string reason, DisconnectOptions options) =>
        router.DisconnectClient(clientId, sessionId, reason, options);

    public Task ReleaseSession(string clientId, string newSessionId) =>
        sessions.ReleaseAsync(clientId, newSessionId, id => router.CloseReplacedConnectionAsync(id, newSessionId));

    public Task DeliverToClient(string clientId, IReadOnlyList<QueuedMessage> messages) => sessions.DeliverLocalAsync(clientId, messages);

    public Task ApplyRetained(RetainedChange change) => retained.ApplyAsync(change);

    public Task<IReadOnlyList<RetainedChange>> GetRetained() => Task.FromResult(retained.Snapshot());

    public Task AccessChanged(AccessChange change) => access.ApplyAsync(change);

    public Task RulesChanged() => rules.RefreshAsync();

    public Task<bool> AdoptNode(string stoppingNodeId) => sessions.AdoptNowAsync(stoppingNodeId);

    public Task Drained(string stoppingNodeId) => router.PeerDrained(stoppingNodeId);

    public Task<ConnectionDelivery?> GetDelivery(string clientId, string sessionId) => Task.FromResult(router.GetDelivery(clientId, sessionId));
}
