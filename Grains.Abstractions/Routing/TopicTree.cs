namespace OrleansIot.Grains.Abstractions.Routing;

/// <summary>
/// Topic filters in a trie, each with the set of owners (e.g. nodes) that hold it, for matching a published topic
/// against many filters in time proportional to the topic's levels, not to the number of filters. Not thread-safe.
/// </summary>
/// <param name="indexOwners">
/// Also keep each owner's filters, so <see cref="FiltersOf"/> and <see cref="RemoveOwner"/> cost the owner's filters,
/// not a walk of the whole tree: for trees with many owners that come and go (one per client, removed at every
/// connect and disconnect), where the walk made each connect cost all the other clients' filters. Without it (a few
/// owners, each with many filters: nodes) nothing more is kept.
/// </param>
public sealed class TopicTree<TOwner>(bool indexOwners = false) where TOwner : notnull
{
    private readonly Node _root = new();

    // An owner's filters: a string while it holds one (most clients), a set when it holds more.
    private readonly Dictionary<TOwner, object>? _byOwner = indexOwners ? new() : null;

    /// <summary>Number of distinct filters held by at least one owner.</summary>
    public int FilterCount { get; private set; }

    /// <summary>Adds an owner to a filter; false when it held it already.</summary>
    public bool Add(string filter, TOwner owner)
    {
        var node = _root;
        foreach (var level in filter.Split('/'))
        {
            node.Children ??= new(StringComparer.Ordinal);
            if (!node.Children.TryGetValue(level, out var child))
            {
                child = new Node();
                node.Children[level] = child;
            }

            node = child;
        }

        node.Owners ??= [];
        var added = node.Owners.Add(owner);
        if (added && node.Owners.Count == 1)
        {
            FilterCount++;
        }

        if (added && _byOwner is not null)
        {
            if (!_byOwner.TryGetValue(owner, out var held))
            {
                _byOwner[owner] = filter;
            }
            else if (held is HashSet<string> set)
            {
                set.Add(filter);
            }
            else
            {
                _byOwner[owner] = new HashSet<string>(StringComparer.Ordinal) { (string)held, filter };
            }
        }

        return added;
    }

    /// <summary>Removes an owner from a filter; false when it did not hold it.</summary>
    public bool Remove(string filter, TOwner owner)
    {
        var path = new List<(Node Parent, string Level)>();
        var node = _root;
        foreach (var level in filter.Split('/'))
        {
            if (node.Children is null || !node.Children.TryGetValue(level, out var child))
            {
                return false;
            }

            path.Add((node, level));
            node = child;
        }

        if (node.Owners is null || !node.Owners.Remove(owner))
        {
            return false;
        }

        if (node.Owners.Count == 0)
        {
            FilterCount--;
            node.Owners = null;
        }

        if (_byOwner is not null && _byOwner.TryGetValue(owner, out var held))
        {
            if (held is not HashSet<string> set || (set.Remove(filter) && set.Count == 0))
            {
                _byOwner.Remove(owner);
            }
        }

        // Prune empty branches so a churning subscription set does not leak nodes.
        for (var i = path.Count - 1; i >= 0 && node.Owners is null && node.Children is not { Count: > 0 }; i--)
        {
            var (parent, level) = path[i];
            parent.Children!.Remove(level);
            node = parent;
        }

        return true;
    }

    /// <summary>Removes every filter of an owner.</summary>
    public void RemoveOwner(TOwner owner)
    {
        foreach (var filter in FiltersOf(owner).ToList())
        {
            Remove(filter, owner);
        }
    }

    /// <summary>The filters an owner holds.</summary>
    public IEnumerable<string> FiltersOf(TOwner owner)
    {
        if (_byOwner is not null)
        {
            return !_byOwner.TryGetValue(owner, out var held) ? []
                : held is HashSet<string> set ? [.. set]
                : [(string)held];
        }

        var found = new List<string>();
        Walk(_root, [], owner, found);
        return found;
    }

    /// <summary>Adds to <paramref name="owners"/> every owner of a filter that matches <paramref name="topic"/>.</summary>
    public void Match(string topic, ISet<TOwner> owners)
    {
        var levels = topic.Split('/');
        // Filters starting with a wildcard do not match '$' topics.
        Match(_root, levels, 0, owners, skipRootWildcards: topic.StartsWith('$'));
    }

    private static void Match(Node node, string[] levels, int index, ISet<TOwner> owners, bool skipRootWildcards)
    {
        var children = node.Children;
        if (children is null)
        {
            return;
        }

        var wildcardsAllowed = !(skipRootWildcards && index == 0);
        if (wildcardsAllowed && children.TryGetValue("#", out var multi) && multi.Owners is { } multiOwners)
        {
            owners.UnionWith(multiOwners);   // "#" matches this level and everything below, including the parent
        }

        if (index == levels.Length)
        {
            return;
        }

        if (children.TryGetValue(levels[index], out var exact))
        {
            Visit(exact, levels, index + 1, owners, skipRootWildcards);
        }

        if (wildcardsAllowed && children.TryGetValue("+", out var single))
        {
            Visit(single, levels, index + 1, owners, skipRootWildcards);
        }
    }

    private static void Visit(Node node, string[] levels, int next, ISet<TOwner> owners, bool skipRootWildcards)
    {
        if (next == levels.Length && node.Owners is { } here)
        {
            owners.UnionWith(here);
        }

        Match(node, levels, next, owners, skipRootWildcards);
    }

    private static void Walk(Node node, List<string> path, TOwner owner, List<string> found)
    {
        if (node.Owners is { } owners && owners.Contains(owner))
        {
            found.Add(string.Join('/', path));
        }

        if (node.Children is null)
        {
            return;
        }

        foreach (var (level, child) in node.Children)
        {
            path.Add(level);
            Walk(child, path, owner, found);
            path.RemoveAt(path.Count - 1);
        }
    }

    private sealed class Node
    {
        public Dictionary<string, Node>? Children { get; set; }
        public HashSet<TOwner>? Owners { get; set; }
    }
}
