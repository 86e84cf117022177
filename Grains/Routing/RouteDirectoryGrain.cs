using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Routing;

/// <summary>
/// The list of live gateway nodes, kept by leases that nodes renew. Deliberately in memory: it is rebuilt from
/// the nodes' next renewals if it is lost, and it is never on the message path.
/// </summary>
[GrainType("route-directory")]
internal sealed class RouteDirectoryGrain(TimeProvider time) : Grain, IRouteDirectoryGrain
{
    private readonly Dictionary<string, (RouteNodeEntry Entry, DateTimeOffset Expires)> _nodes = new(StringComparer.Ordinal);

    public Task<IReadOnlyList<RouteNodeEntry>> Join(RouteNodeEntry node, TimeSpan lease)
    {
        var now = time.GetUtcNow();
        _nodes[node.NodeId] = (node, now + lease);
        foreach (var expired in _nodes.Where(n => n.Value.Expires < now).Select(n => n.Key).ToList())
        {
            _nodes.Remove(expired);
        }

        return Task.FromResult<IReadOnlyList<RouteNodeEntry>>([.. _nodes.Values.Select(v => v.Entry)]);
    }

    public Task Leave(string nodeId)
    {
        _nodes.Remove(nodeId);
        return Task.CompletedTask;
    }
}
