using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Routing;

/// <summary>
/// The list of live gateway nodes, kept by leases that nodes renew, and the stored list of every node that joined
/// and has not been adopted since. A node that stops renewing (or leaves) becomes an orphan once its lease is
/// over; one live node claims it and adopts its sessions. After this grain (re)activates, nodes get one lease
/// period to re-join before missing ones count as gone.
/// </summary>
[GrainType("route-directory")]
internal sealed class RouteDirectoryGrain(
    [PersistentState("route-directory", StorageNames.Default)] IPersistentState<RouteDirectoryState> state,
    TimeProvider time) : Grain, IRouteDirectoryGrain
{
    private static readonly TimeSpan ClaimLease = TimeSpan.FromMinutes(1);
    private readonly Dictionary<string, (LiveNode Node, DateTimeOffset Expires)> _nodes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Claimer, DateTimeOffset Expires)> _claims = new(StringComparer.Ordinal);
    private DateTimeOffset _activatedAt;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _activatedAt = time.GetUtcNow();
        return Task.CompletedTask;
    }

    public async Task<DirectoryView> Join(RouteNodeEntry node, long routeVersion, TimeSpan lease)
    {
        var now = time.GetUtcNow();
        _nodes[node.NodeId] = (new LiveNode(node, routeVersion), now + lease);
        foreach (var expired in _nodes.Where(n => n.Value.Expires < now).Select(n => n.Key).ToList())
        {
            _nodes.Remove(expired);
        }

        if (state.State.Nodes.Add(node.NodeId))
        {
            await state.WriteStateAsync();
        }

        // Right after activation every node looks gone: wait one lease for the live ones to re-join.
        var orphans = now - _activatedAt < lease
            ? []
            : state.State.Nodes.Where(id => !_nodes.ContainsKey(id) && !IsClaimedByAnother(id, node.NodeId, now)).ToList();
        return new DirectoryView([.. _nodes.Values.Select(v => v.Node)], orphans);
    }

    public Task Leave(string nodeId)
    {
        _nodes.Remove(nodeId);
        return Task.CompletedTask;
    }

    public Task<RouteNodeEntry?> Find(string nodeId) =>
        Task.FromResult(_nodes.TryGetValue(nodeId, out var node) && node.Expires >= time.GetUtcNow() ? node.Node.Entry : null);

    public Task HandOver(string stoppingNodeId, string adopterNodeId)
    {
        _nodes.Remove(stoppingNodeId);
        if (state.State.Nodes.Contains(stoppingNodeId))
        {
            _claims[stoppingNodeId] = (adopterNodeId, time.GetUtcNow() + ClaimLease);
        }

        return Task.CompletedTask;
    }

    public Task<bool> Claim(string goneNodeId, string claimerNodeId)
    {
        var now = time.GetUtcNow();
        if (!state.State.Nodes.Contains(goneNodeId) || _nodes.ContainsKey(goneNodeId)
            || (_claims.TryGetValue(goneNodeId, out var claim) && claim.Claimer != claimerNodeId && claim.Expires > now))
        {
            return Task.FromResult(false);
        }

        _claims[goneNodeId] = (claimerNodeId, now + ClaimLease);
        return Task.FromResult(true);
    }

    public async Task Adopted(string goneNodeId, string claimerNodeId)
    {
        if (_claims.TryGetValue(goneNodeId, out var claim) && claim.Claimer == claimerNodeId)
        {
            _claims.Remove(goneNodeId);
            if (state.State.Nodes.Remove(goneNodeId))
            {
                await state.WriteStateAsync();
            }
        }
    }

    // A claimer sees its own claims again: an adoption that failed part way is retried at its next refresh.
    private bool IsClaimedByAnother(string nodeId, string asker, DateTimeOffset now) =>
        _claims.TryGetValue(nodeId, out var claim) && claim.Expires > now && claim.Claimer != asker;
}

// Stored as JSON (System.Text.Json): the property names are the storage schema. Append, never rename.
[GenerateSerializer, Alias("OrleansIot.RouteDirectoryState")]
public sealed class RouteDirectoryState
{
    [Id(0)] public HashSet<string> Nodes { get; set; } = new(StringComparer.Ordinal);
}
