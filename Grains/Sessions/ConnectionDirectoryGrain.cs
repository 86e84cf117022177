using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Grains.Sessions;

/// <summary>
/// A partition of the live-connection directory (<see cref="IConnectionDirectoryGrain"/>). Kept alive: its live entries
/// are in memory only, and an idle collection would forget connections that are still up.
/// </summary>
[GrainType("connection-directory"), KeepAlive]
internal sealed class ConnectionDirectoryGrain(
    [PersistentState("connection-directory", StorageNames.Default)] IPersistentState<ConnectionDirectoryState> state) : Grain, IConnectionDirectoryGrain
{
    // A few hundred bytes per connected device, against a grain activation's few KB. Node ids are shared: a node has
    // thousands of connections and one id.
    private readonly Dictionary<string, Live> _live = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _nodeIds = new(StringComparer.Ordinal);

    public async Task<ConnectionClaim> Claim(string clientId, ClientConnection connection, bool stored)
    {
        var marked = state.State.Stored.Contains(clientId);
        if (stored && !marked)
        {
            // Stored before the session grain can store anything: a later clean connect then never skips it.
            state.State.Stored.Add(clientId);
            await state.WriteStateAsync();
        }

        var previous = _live.TryGetValue(clientId, out var before) ? before.ToConnection() : null;
        _live[clientId] = Live.Of(connection, NodeIdOf(connection.NodeId));
        return new ConnectionClaim(previous, stored || marked);
    }

    public async Task Settled(string clientId, string sessionId)
    {
        if (_live.TryGetValue(clientId, out var current) && current.SessionId == sessionId && state.State.Stored.Remove(clientId))
        {
            await state.WriteStateAsync();
        }
    }

    public async Task Mark(IReadOnlyList<string> clientIds)
    {
        var added = false;
        foreach (var clientId in clientIds)
        {
            added |= state.State.Stored.Add(clientId);
        }

        if (added)
        {
            await state.WriteStateAsync();
        }
    }

    public Task Release(IReadOnlyList<ReleasedConnection> connections)
    {
        foreach (var ended in connections)
        {
            if (_live.TryGetValue(ended.ClientId, out var current) && current.SessionId == ended.SessionId)
            {
                _live.Remove(ended.ClientId);
            }
        }

        return Task.CompletedTask;
    }

    public Task Register(IReadOnlyList<LiveClient> connections)
    {
        foreach (var live in connections)
        {
            _live.TryAdd(live.ClientId, Live.Of(live.Connection, NodeIdOf(live.Connection.NodeId)));
        }

        return Task.CompletedTask;
    }

    public Task<ClientConnection?> Get(string clientId) =>
        Task.FromResult(_live.TryGetValue(clientId, out var current) ? current.ToConnection() : null);

    private string NodeIdOf(string nodeId)
    {
        if (!_nodeIds.TryGetValue(nodeId, out var shared))
        {
            _nodeIds[nodeId] = shared = nodeId;
        }

        return shared;
    }

    private readonly record struct Live(string SessionId, string NodeId, DateTimeOffset Since)
    {
        public static Live Of(ClientConnection connection, string nodeId) => new(connection.SessionId, nodeId, connection.Since);

        public ClientConnection ToConnection() => new(SessionId, NodeId, Since);
    }
}

// Stored as JSON (System.Text.Json): the property names are the storage schema. Append, never rename.
[GenerateSerializer, Alias("OrleansIot.ConnectionDirectoryState")]
public sealed class ConnectionDirectoryState
{
    /// <summary>Client ids whose session grain may store something (a persistent session or a will was asked for).</summary>
    [Id(0)] public HashSet<string> Stored { get; set; } = new(StringComparer.Ordinal);
}
