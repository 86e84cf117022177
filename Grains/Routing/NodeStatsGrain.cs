using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Routing;

/// <summary>Holds each node's latest report; a node that stopped reporting drops out of the list.</summary>
[GrainType("node-stats")]
internal sealed class NodeStatsGrain(TimeProvider time) : Grain, INodeStatsGrain
{
    private readonly Dictionary<string, NodeStats> _nodes = new(StringComparer.Ordinal);

    public Task Report(NodeStats stats)
    {
        _nodes[stats.NodeId] = stats;
        return Task.CompletedTask;
    }

    public Task Leave(string nodeId)
    {
        _nodes.Remove(nodeId);
        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<NodeStats>> List(TimeSpan fresh)
    {
        var oldest = time.GetUtcNow() - fresh;
        foreach (var gone in _nodes.Values.Where(n => n.ReportedAt < oldest).Select(n => n.NodeId).ToList())
        {
            _nodes.Remove(gone);
        }

        return Task.FromResult<IReadOnlyList<NodeStats>>([.. _nodes.Values.OrderBy(n => n.Name, StringComparer.Ordinal).ThenBy(n => n.NodeId, StringComparer.Ordinal)]);
    }
}
