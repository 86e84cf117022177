using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// Shared subscriptions (<c>$share/{group}/{filter}</c>) of every node, this one included: which nodes have members
/// of each group, indexed by the group's topic filter so a publish finds its groups in one trie walk. Each message
/// goes to one member of each matching group: the publishing node picks a node with members, weighted by how many
/// members each has (so every member gets about the same share wherever it is connected), that node picks a member.
/// Not thread-safe: the router guards it with its route lock.
/// </summary>
internal sealed class SharedRoutes
{
    // Trie of the groups' topic filters; the owners are the full "$share/group/filter" strings.
    private readonly TopicTree<string> _filters = new();

    // $share filter -> node -> members there.
    private readonly Dictionary<string, Dictionary<string, int>> _nodes = new(StringComparer.Ordinal);

    public int Count => _nodes.Count;

    /// <summary>A node has <paramref name="members"/> members of the group (at least one is assumed).</summary>
    public void Set(string shareFilter, string nodeId, int members)
    {
        if (!_nodes.TryGetValue(shareFilter, out var nodes))
        {
            nodes = new Dictionary<string, int>(StringComparer.Ordinal);
            _nodes[shareFilter] = nodes;
            _filters.Add(TopicFilter.MatchingFilter(shareFilter), shareFilter);
        }

        nodes[nodeId] = Math.Max(1, members);
    }

    /// <summary>Changes a node's member count of a group it is known to have; ignored otherwise.</summary>
    public void UpdateMembers(string shareFilter, string nodeId, int members)
    {
        if (_nodes.TryGetValue(shareFilter, out var nodes) && nodes.ContainsKey(nodeId))
        {
            nodes[nodeId] = Math.Max(1, members);
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
        foreach (var shareFilter in _nodes.Where(n => n.Value.ContainsKey(nodeId)).Select(n => n.Key).ToList())
        {
            Remove(shareFilter, nodeId);
        }
    }

    /// <summary>For each group matching the topic, one node that has members of it, chosen in proportion to its members.</summary>
    public void Pick(string topic, List<(string ShareFilter, string NodeId)> picks)
    {
        var groups = new HashSet<string>(StringComparer.Ordinal);
        _filters.Match(topic, groups);
        foreach (var shareFilter in groups)
        {
            var nodes = _nodes[shareFilter];
            picks.Add((shareFilter, nodes.Count == 1 ? nodes.Keys.First() : Weighted(nodes)));
        }
    }

    private static string Weighted(Dictionary<string, int> nodes)
    {
        var ticket = Random.Shared.Next(nodes.Values.Sum());
        foreach (var (nodeId, members) in nodes)
        {
            if (ticket < members)
            {
                return nodeId;
            }

            ticket -= members;
        }

        return nodes.Keys.First();
    }
}
