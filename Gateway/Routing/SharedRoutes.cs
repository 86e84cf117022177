using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// Shared subscriptions (<c>$share/{group}/{filter}</c>) of every node, this one included: which nodes have members
/// of each group, indexed by the group's topic filter so a publish finds its groups in one trie walk. Each message
/// goes to one member of each matching group: the publishing node picks a node with members (uniformly), that
/// node picks a member. Not thread-safe: the router guards it with its route lock.
/// </summary>
internal sealed class SharedRoutes
{
    // Trie of the groups' topic filters; the owners are the full "$share/group/filter" strings.
    private readonly TopicTree<string> _filters = new();
    private readonly Dictionary<string, List<string>> _nodes = new(StringComparer.Ordinal);

    public int Count => _nodes.Count;

    public void Add(string shareFilter, string nodeId)
    {
        if (!_nodes.TryGetValue(shareFilter, out var nodes))
        {
            nodes = [];
            _nodes[shareFilter] = nodes;
            _filters.Add(TopicFilter.MatchingFilter(shareFilter), shareFilter);
        }

        if (!nodes.Contains(nodeId))
        {
            nodes.Add(nodeId);
        }
    }

    public void Remove(string shareFilter, string nodeId)
    {
        if (_nodes.TryGetValue(shareFilter, out var nodes) && nodes.Remove(nodeId) && nodes.Count == 0)
        {
            _nodes.Remove(shareFilter);
            _filters.Remove(TopicFilter.MatchingFilter(shareFilter), shareFilter);
        }
    }

    public void RemoveNode(string nodeId)
    {
        foreach (var shareFilter in _nodes.Where(n => n.Value.Contains(nodeId)).Select(n => n.Key).ToList())
        {
            Remove(shareFilter, nodeId);
        }
    }

    /// <summary>For each group matching the topic, one node (chosen uniformly) that has members of it.</summary>
    public void Pick(string topic, List<(string ShareFilter, string NodeId)> picks)
    {
        var groups = new HashSet<string>(StringComparer.Ordinal);
        _filters.Match(topic, groups);
        foreach (var shareFilter in groups)
        {
            var nodes = _nodes[shareFilter];
            picks.Add((shareFilter, nodes[nodes.Count == 1 ? 0 : Random.Shared.Next(nodes.Count)]));
        }
    }
}
