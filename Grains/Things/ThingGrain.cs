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
    TimeProvider time,
    ILogger<ThingGrain> logger) : Grain, IThingGrain
{
    private readonly TimeSpan _usagePersistInterval = options.Value.UsagePersistInterval;

    // Usage arrives often (every gateway flush) and is cheap to lose a little of; connectivity is rare and must
    // not be lost. So usage only marks the state dirty and a one-shot timer persists it, while connectivity
    // changes write at once (and carry any pending usage with them).
    private bool _usageDirty;
    private IGrainTimer? _persistTimer;

    public async Task<long> Connected(ConnectionOpened connection)
    {
        var s = state.State;
        s.FirstSeenAt ??= connection.At;
        s.ConnectionVersion++;
        var c = s.Connectivity;
        c.Connected = true;
        c.Since = connection.At;
        c.SessionId = connection.SessionId;
        c.RemoteAddress = connection.RemoteAddress;
        c.Node = connection.Node;
        c.ProtocolVersion = connection.ProtocolVersion;
        await PersistAsync();
        await IndexAsync(Abstractions.FleetIndex.IndexPart.Connectivity);
        return s.ConnectionVersion;
    }

    public async Task Disconnected(ConnectionClosed connection)
    {
        var s = state.State;
        CountUsage(connection.FinalUsage);
        var c = s.Connectivity;
        // A takeover can deliver the old session's disconnect after the new session's connect: only the
        // current session's end changes the connected flag (and counts its minutes).
        if (c.SessionId == connection.SessionId)
        {
            if (c.Connected && c.Since is { } since)
            {
                CountConnected(since, connection.At);
            }

            c.Connected = false;
            c.DisconnectReason = connection.Reason;
            c.LastDisconnectAt = connection.At;
        }

        s.FirstSeenAt ??= connection.At;
        await PersistAsync();
        await IndexAsync(Abstractions.FleetIndex.IndexPart.Connectivity);
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

    public Task<ThingStatus?> GetStatus()
    {
        var s = state.State;
        if (s.FirstSeenAt is not { } firstSeen)
        {
            return Task.FromResult<ThingStatus?>(null);
        }

        var c = s.Connectivity;
        var u = s.Usage;
        return Task.FromResult<ThingStatus?>(new ThingStatus(
            this.GetPrimaryKeyString(),
            new ThingConnectivity(c.Connected, c.Since, c.SessionId, c.RemoteAddress, c.Node, c.ProtocolVersion, c.DisconnectReason, c.LastDisconnectAt),
            new ThingUsage(u.MessagesIn, u.BytesIn, u.MessagesOut, u.BytesOut, u.MessagesDropped),
            firstSeen));
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
    }

    [LoggerMessage(EventId = 2013, Level = LogLevel.Warning, Message = "Could not persist the state of thing {ThingName}; will retry")]
    private static partial void LogPersistFailed(ILogger logger, Exception exception, string thingName);
}
