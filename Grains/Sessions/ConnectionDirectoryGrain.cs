using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.FleetIndex;

namespace OrleansIot.Grains.Sessions;

/// <summary>
/// A partition of the live-connection directory (<see cref="IConnectionDirectoryGrain"/>). Kept alive: its live entries
/// are in memory only, and an idle collection would forget connections that are still up. It also hands out the
/// connections' lifecycle version numbers (<see cref="ConnectionVersions"/>).
/// </summary>
[GrainType("connection-directory"), KeepAlive]
internal sealed partial class ConnectionDirectoryGrain(
    [PersistentState("connection-directory", StorageNames.Default)] IPersistentState<ConnectionDirectoryState> state,
    IFleetIndexStore index,
    FleetIndexView indexView,
    IOptions<FleetIndexOptions> indexOptions,
    TimeProvider time,
    ILogger<ConnectionDirectoryGrain> logger) : Grain, IConnectionDirectoryGrain
{
    private long _lastVersion;

    // Connectivity changes not yet in the fleet index, the newest per client id; written by a one-shot timer.
    private Dictionary<string, IndexSection> _indexPending = new(StringComparer.Ordinal);
    private IGrainTimer? _indexTimer;

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
        _lastVersion = ConnectionVersions.Next(_lastVersion, time.GetUtcNow());
        _live[clientId] = Live.Of(connection with { VersionNumber = _lastVersion }, NodeIdOf(connection.NodeId));
        IndexLater(clientId, connected: true, connection.Since, reason: null);
        return new ConnectionClaim(previous, stored || marked, _lastVersion);
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
                IndexLater(ended.ClientId, connected: false, ended.At ?? time.GetUtcNow(), ended.Reason ?? DisconnectReasons.ConnectionLost);
            }
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<LiveClient>> ReleaseNode(string nodeId)
    {
        var released = new List<LiveClient>();
        foreach (var (clientId, live) in _live)
        {
            if (live.NodeId == nodeId)
            {
                released.Add(new LiveClient(clientId, live.ToConnection()));
            }
        }

        var now = time.GetUtcNow();
        foreach (var gone in released)
        {
            _live.Remove(gone.ClientId);
            IndexLater(gone.ClientId, connected: false, now, DisconnectReasons.ConnectionLost);
        }

        _nodeIds.Remove(nodeId);
        return Task.FromResult<IReadOnlyList<LiveClient>>(released);
    }

    public Task Register(IReadOnlyList<LiveClient> connections)
    {
        foreach (var live in connections)
        {
            if (_live.TryAdd(live.ClientId, Live.Of(live.Connection, NodeIdOf(live.Connection.NodeId))))
            {
                IndexLater(live.ClientId, connected: true, live.Connection.Since, reason: null);
            }
        }

        return Task.CompletedTask;
    }

    public Task<ClientConnection?> Get(string clientId) =>
        Task.FromResult(_live.TryGetValue(clientId, out var current) ? current.ToConnection() : null);

    private void IndexLater(string clientId, bool connected, DateTimeOffset at, string? reason)
    {
        _indexPending[clientId] = IndexFields.Connectivity(connected, at.ToUnixTimeMilliseconds(), reason);
        ScheduleIndexFlush();
    }

    private void ScheduleIndexFlush() => _indexTimer ??= this.RegisterGrainTimer(
        static (grain, _) => grain.FlushIndexAsync(),
        this,
        new GrainTimerCreationOptions(indexOptions.Value.WriteBehind, Timeout.InfiniteTimeSpan) { KeepAlive = true });

    /// <summary>
    /// Writes the pending connectivity changes (only registered things have entries). A failed write is kept and tried
    /// again with the next batch, unless a newer change of the client id came meanwhile.
    /// </summary>
    private async Task FlushIndexAsync()
    {
        _indexTimer?.Dispose();
        _indexTimer = null;
        if (_indexPending.Count == 0)
        {
            return;
        }

        var batch = _indexPending;
        _indexPending = new(StringComparer.Ordinal);
        try
        {
            if ((await indexView.CurrentAsync()).Configuration.Connectivity)
            {
                await index.WriteConnectivityAsync([.. batch.Select(p => new ConnectivityIndexWrite(p.Key, p.Value))]);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            FleetIndexMetrics.WriteFailed.Add(batch.Count);
            LogIndexWriteFailed(logger, ex, batch.Count);
            foreach (var (clientId, section) in batch)
            {
                _indexPending.TryAdd(clientId, section);
            }

            ScheduleIndexFlush();
        }
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        await FlushIndexAsync();
        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    [LoggerMessage(EventId = 2015, Level = LogLevel.Warning, Message = "Could not write {Count} connectivity changes to the fleet index; tried again with the next batch")]
    private static partial void LogIndexWriteFailed(ILogger logger, Exception exception, int count);

    private string NodeIdOf(string nodeId)
    {
        if (!_nodeIds.TryGetValue(nodeId, out var shared))
        {
            _nodeIds[nodeId] = shared = nodeId;
        }

        return shared;
    }

    private readonly record struct Live(string SessionId, string NodeId, DateTimeOffset Since, string? RemoteAddress, int ProtocolVersion, long VersionNumber)
    {
        public static Live Of(ClientConnection connection, string nodeId) =>
            new(connection.SessionId, nodeId, connection.Since, connection.RemoteAddress, connection.ProtocolVersion, connection.VersionNumber);

        public ClientConnection ToConnection() => new(SessionId, NodeId, Since, RemoteAddress, ProtocolVersion, VersionNumber);
    }
}

// Stored as JSON (System.Text.Json): the property names are the storage schema. Append, never rename.
[GenerateSerializer, Alias("OrleansIot.ConnectionDirectoryState")]
public sealed class ConnectionDirectoryState
{
    /// <summary>Client ids whose session grain may store something (a persistent session or a will was asked for).</summary>
    [Id(0)] public HashSet<string> Stored { get; set; } = new(StringComparer.Ordinal);
}
