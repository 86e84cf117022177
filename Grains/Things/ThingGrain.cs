using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Grains.Things;

[GrainType("thing")]
internal sealed partial class ThingGrain(
    [PersistentState("thing", StorageNames.Default)] IPersistentState<ThingState> state,
    IOptions<ThingOptions> options,
    IOptions<Shadows.ShadowOptions> shadowOptions,
    Shadows.IShadowStore shadowStore,
    OrleansIot.Grains.Abstractions.Routing.IBrokerPublisher broker,
    Registry.IRegistryStore registry,
    IOptions<OrleansIot.Grains.Abstractions.Registry.RegistryOptions> registryOptions,
    OrleansIot.Grains.Abstractions.Policies.IAccessChangeNotifier access,
    FleetIndex.IFleetIndexStore index,
    FleetIndex.FleetIndexView indexView,
    FleetIndex.IndexWriteBehind indexBehind,
    TimeProvider time,
    ILogger<ThingGrain> logger) : Grain, IThingGrain
{
    private readonly TimeSpan _usagePersistInterval = options.Value.UsagePersistInterval;
    private readonly int _historyLength = options.Value.ConnectionHistory;

    // Usage arrives often (every gateway flush) and is cheap to lose a little of; connectivity is rare and must
    // not be lost. So usage only marks the state dirty and a one-shot timer persists it, while connectivity
    // changes write at once (and carry any pending usage with them).
    private bool _usageDirty;
    private IGrainTimer? _persistTimer;

    public async Task<long> Connected(ConnectionOpened connection)
    {
        var s = state.State;
        s.FirstSeenAt ??= connection.At;
        // The connection directory hands the numbers out now; a gateway of an earlier release left it to the thing.
        s.ConnectionVersion = connection.VersionNumber > 0 ? Math.Max(s.ConnectionVersion, connection.VersionNumber) : s.ConnectionVersion + 1;
        var version = connection.VersionNumber > 0 ? connection.VersionNumber : s.ConnectionVersion;
        var c = s.Connectivity;
        if (s.History.Find(h => h.SessionId == connection.SessionId) is { EndedAt: not null } over)
        {
            // Its end arrived first (a client that disconnects at once: the gateway reports both concurrently). It
            // is not connected; the history gets what only the start knew.
            over.ConnectedAt = connection.At;
            over.Node = connection.Node;
            over.RemoteAddress = connection.RemoteAddress;
            over.ProtocolVersion = connection.ProtocolVersion;
            if (c.SessionId == connection.SessionId)
            {
                Began(c, connection);
            }

            await PersistAsync();
            return version;
        }

        if (c.Connected && c.SessionId != connection.SessionId)
        {
            // Replaced before its end was reported (a takeover's disconnect may come later; a dead node's never does).
            Remember(c, endedAt: null, reason: null);
        }

        c.Connected = true;
        Began(c, connection);
        await PersistAsync();
        await IndexAsync(Abstractions.FleetIndex.IndexPart.Connectivity);
        return version;
    }

    public async Task Disconnected(ConnectionClosed connection)
    {
        var s = state.State;
        var c = s.Connectivity;
        if ((c.SessionId == connection.SessionId && !c.Connected && c.LastDisconnectAt is not null)
            || s.History.Exists(h => h.SessionId == connection.SessionId && h.EndedAt is not null))
        {
            // Recorded already: an end delivered again (a kept end whose keeper went before it noted the delivery,
            // an adoption tried again) counts its usage and minutes once. But an adopter's guess that the connection
            // was lost (it carries no usage) may arrive before the account of the node that closed it: that account
            // corrects the reason and brings the usage the guess could not know.
            if (connection.Reason != DisconnectReasons.ConnectionLost && CorrectGuessedLoss(s, connection))
            {
                CountUsage(connection.FinalUsage);
                await PersistAsync();
                await IndexAsync(Abstractions.FleetIndex.IndexPart.Connectivity);
            }

            return;
        }

        CountUsage(connection.FinalUsage);
        // A takeover can deliver the old session's disconnect after the new session's connect: only the
        // current session's end changes the connected flag (and counts its minutes).
        if (c.SessionId == connection.SessionId)
        {
            if (c.Connected)
            {
                if (c.Since is { } since)
                {
                    CountConnected(since, connection.At);
                }

                Remember(c, connection.At, connection.Reason);
            }

            c.Connected = false;
            c.DisconnectReason = connection.Reason;
            c.LastDisconnectAt = connection.At;
        }
        else if (s.History.Find(h => h.SessionId == connection.SessionId) is { } replaced)
        {
            replaced.EndedAt ??= connection.At;
            replaced.DisconnectReason ??= connection.Reason;
        }
        else if (connection.Opened is { } opened)
        {
            // The usual case: the thing hears of a connection once, at its end, with its start. A connection that
            // began later stays the current record (told at its start while connectivity was indexed, or its end
            // arrived first): this one goes into the history at its place.
            CountConnected(opened.At, connection.At);
            if (c.Since > opened.At)
            {
                var ended = new ConnectivityState();
                Began(ended, opened);
                Remember(ended, connection.At, connection.Reason, beforeOlderThan: opened.At);
            }
            else
            {
                if (c.Connected)
                {
                    Remember(c, endedAt: null, reason: null);   // an older connection whose end never came
                }

                c.Connected = false;
                Began(c, opened);
                c.DisconnectReason = connection.Reason;
                c.LastDisconnectAt = connection.At;
                Remember(c, connection.At, connection.Reason);
            }

            s.FirstSeenAt = s.FirstSeenAt is { } first && first < opened.At ? first : opened.At;
        }
        else
        {
            // The end of a connection whose start has not arrived yet (or never will: a node of an earlier release
            // died with it): kept, so a late start does not make the thing look connected, and it is the last
            // connection unless the thing knows a later one.
            Remember(new ConnectivityState { SessionId = connection.SessionId }, connection.At, connection.Reason);
            if (!c.Connected && !(c.LastDisconnectAt > connection.At))
            {
                c.SessionId = connection.SessionId;
                c.Since = null;
                c.RemoteAddress = null;
                c.Node = null;
                c.ProtocolVersion = null;
                c.DisconnectReason = connection.Reason;
                c.LastDisconnectAt = connection.At;
            }
        }

        s.FirstSeenAt ??= connection.At;
        await PersistAsync();
        await IndexAsync(Abstractions.FleetIndex.IndexPart.Connectivity);
    }

    /// <summary>Replaces a recorded CONNECTION_LOST of this session with the reason its node gave; false when there is none.</summary>
    private static bool CorrectGuessedLoss(ThingState s, ConnectionClosed connection)
    {
        var corrected = false;
        var c = s.Connectivity;
        if (c.SessionId == connection.SessionId && c.DisconnectReason == DisconnectReasons.ConnectionLost)
        {
            c.DisconnectReason = connection.Reason;
            corrected = true;
        }

        foreach (var h in s.History.Where(h => h.SessionId == connection.SessionId && h.DisconnectReason == DisconnectReasons.ConnectionLost))
        {
            h.DisconnectReason = connection.Reason;
            corrected = true;
        }

        return corrected;
    }

    /// <summary>The start of a connection, as a connectivity record holds it.</summary>
    private static void Began(ConnectivityState c, ConnectionOpened opened)
    {
        c.Since = opened.At;
        c.SessionId = opened.SessionId;
        c.RemoteAddress = opened.RemoteAddress;
        c.Node = opened.Node;
        c.ProtocolVersion = opened.ProtocolVersion;
    }

    /// <summary>
    /// Puts the current connection at the front of the history (or, given <paramref name="beforeOlderThan"/>, before
    /// the first connection that began earlier), keeping the newest <c>ConnectionHistory</c>.
    /// </summary>
    private void Remember(ConnectivityState c, DateTimeOffset? endedAt, string? reason, DateTimeOffset? beforeOlderThan = null)
    {
        var history = state.State.History;
        var at = beforeOlderThan is { } began ? history.FindIndex(h => h.ConnectedAt < began) : 0;
        history.Insert(at < 0 ? history.Count : at, new PastConnectionState
        {
            SessionId = c.SessionId,
            ConnectedAt = c.Since,
            EndedAt = endedAt,
            DisconnectReason = reason,
            Node = c.Node,
            RemoteAddress = c.RemoteAddress,
            ProtocolVersion = c.ProtocolVersion,
        });
        if (history.Count > _historyLength)
        {
            history.RemoveRange(_historyLength, history.Count - _historyLength);
        }
    }

    public Task RecordUsage(UsageDelta delta)
    {
        if (delta.IsEmpty)
        {
            return Task.CompletedTask;
        }

        state.State.FirstSeenAt ??= time.GetUtcNow();
        CountUsage(delta);
        UsageChanged();
        return Task.CompletedTask;
    }

    public async Task<ThingStatus?> GetStatus()
    {
        var s = state.State;
        var (c, firstSeenAt) = await ConnectivityNowAsync();
        if (firstSeenAt is not { } firstSeen)
        {
            return null;
        }

        var u = s.Usage;
        return new ThingStatus(
            this.GetPrimaryKeyString(),
            new ThingConnectivity(c.Connected, c.Since, c.SessionId, c.RemoteAddress, c.Node, c.ProtocolVersion, c.DisconnectReason, c.LastDisconnectAt),
            new ThingUsage(u.MessagesIn, u.BytesIn, u.MessagesOut, u.BytesOut, u.MessagesDropped),
            firstSeen,
            [.. s.History.Select(h => new PastConnection(h.SessionId, h.ConnectedAt, h.EndedAt, h.DisconnectReason, h.Node, h.RemoteAddress, h.ProtocolVersion))]);
    }

    /// <summary>
    /// The thing's connectivity as it stands, and when it was first seen: the stored record, or the open connection the
    /// connection directory holds when the thing has not heard of it (it hears of most connections only at their end).
    /// The stored record when the directory cannot be reached.
    /// </summary>
    private async Task<(ConnectivityState Connectivity, DateTimeOffset? FirstSeenAt)> ConnectivityNowAsync()
    {
        var s = state.State;
        var c = s.Connectivity;
        Abstractions.Sessions.ClientConnection? live;
        try
        {
            live = await Abstractions.Sessions.ConnectionDirectory.ConnectionDirectoryOf(GrainFactory, this.GetPrimaryKeyString()).Get(this.GetPrimaryKeyString());
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogDirectoryUnreachable(logger, ex, this.GetPrimaryKeyString());
            return (c, s.FirstSeenAt);
        }

        var known = live is null
            || live.SessionId == c.SessionId
            || (c.Connected && c.Since > live.Since)
            || s.History.Exists(h => h.SessionId == live.SessionId);
        if (known)
        {
            return (c, s.FirstSeenAt);
        }

        var open = new ConnectivityState
        {
            Connected = true,
            Since = live!.Since,
            SessionId = live.SessionId,
            RemoteAddress = live.RemoteAddress,
            Node = live.NodeName,
            ProtocolVersion = live.ProtocolVersion > 0 ? live.ProtocolVersion : null,
            DisconnectReason = c.DisconnectReason,
            LastDisconnectAt = c.LastDisconnectAt,
        };
        return (open, s.FirstSeenAt is { } first && first < live.Since ? first : live.Since);
    }

    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_usageDirty)
        {
            try
            {
                await PersistAsync();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogPersistFailed(logger, ex, this.GetPrimaryKeyString());
            }
        }

        await FlushIndexAsync();
        await base.OnDeactivateAsync(reason, cancellationToken);
    }

    private async Task PersistUsageAsync()
    {
        _persistTimer?.Dispose();
        _persistTimer = null;
        if (!_usageDirty)
        {
            return;
        }

        try
        {
            await PersistAsync();
        }
        catch (Exception ex)
        {
            // The counters stay in memory (still dirty): the next usage, connectivity change or the
            // deactivation writes them.
            LogPersistFailed(logger, ex, this.GetPrimaryKeyString());
        }
    }

    private async Task PersistAsync()
    {
        // No interleaving (the grain is not reentrant), so nothing can dirty the state between write and flag.
        await state.WriteStateAsync();
        _usageDirty = false;
    }

    private static void Add(UsageState usage, UsageDelta delta)
    {
        usage.MessagesIn += delta.MessagesIn;
        usage.BytesIn += delta.BytesIn;
        usage.MessagesOut += delta.MessagesOut;
        usage.BytesOut += delta.BytesOut;
        usage.MessagesDropped += delta.MessagesDropped;
        usage.RuleExecutions += delta.RuleExecutions;
        usage.JobExecutions += delta.JobExecutions;
    }

    [LoggerMessage(EventId = 2014, Level = LogLevel.Warning, Message = "Could not read the open connection of thing {ThingName} from the connection directory; its stored connectivity is answered")]
    private static partial void LogDirectoryUnreachable(ILogger logger, Exception exception, string thingName);

    [LoggerMessage(EventId = 2013, Level = LogLevel.Warning, Message = "Could not persist the state of thing {ThingName}; will retry")]
    private static partial void LogPersistFailed(ILogger logger, Exception exception, string thingName);
}
