using Microsoft.Extensions.Logging;
using MQTTnet.Protocol;
using MQTTnet.Server;
using OrleansIot.Gateway.Mqtt;
using OrleansIot.Gateway.Routing;
using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Security;

/// <summary>
/// Carries identity and access changes to every node (the grains that store them call <see cref="Changed"/>) and
/// applies them to this node's live connections: a connection whose certificate no longer authenticates (not ACTIVE,
/// deleted, its CA deactivated) is closed (MQTT 5 DISCONNECT 0x87, AWS <c>AUTH_ERROR</c>); the others get their
/// policies read again, which drops every cached decision.
/// </summary>
internal sealed partial class AccessChanges : IAccessChangeNotifier
{
    private const int MaxConcurrentRefreshes = 64;
    private readonly LiveConnections _connections;
    private readonly DeviceAuthenticator _authenticator;
    private readonly ApiKeyAuthenticator _apiKeys;
    private readonly MqttServer _mqtt;
    private readonly ClusterRouter _router;
    private readonly ILogger<AccessChanges> _logger;

    public AccessChanges(LiveConnections connections, DeviceAuthenticator authenticator, ApiKeyAuthenticator apiKeys, MqttServer mqtt, ClusterRouter router, ILogger<AccessChanges> logger)
    {
        _connections = connections;
        _authenticator = authenticator;
        _apiKeys = apiKeys;
        _mqtt = mqtt;
        _router = router;
        _logger = logger;
    }

    /// <summary>
    /// Applies the change here and on every other node; completes when every node has it (or the broadcast timed
    /// out). The re-checks run after that: they read the grains, and the grain announcing the change is still busy
    /// with the call that changed it.
    /// </summary>
    public Task Changed(AccessChange change) => Task.WhenAll(ApplyAsync(change), _router.BroadcastAccessChangeAsync(change));

    /// <summary>Starts re-checking this node's connections the change touches.</summary>
    public Task ApplyAsync(AccessChange change)
    {
        if (change.Kind == AccessChangeKind.ApiKey)
        {
            _apiKeys.Forget(change.Name);
            return Task.CompletedTask;
        }

        _ = Task.Run(() => RecheckAllAsync(change));
        return Task.CompletedTask;
    }

    private async Task RecheckAllAsync(AccessChange change)
    {
        var affected = _connections.All.Where(m => m.Access is { Unrestricted: false } access && Touches(change, m, access)).ToList();
        using var gate = new SemaphoreSlim(MaxConcurrentRefreshes);
        await Task.WhenAll(affected.Select(async meter =>
        {
            await gate.WaitAsync();
            try
            {
                await RecheckAsync(meter);
            }
            finally
            {
                gate.Release();
            }
        }));
    }

    private static bool Touches(AccessChange change, LiveConnection meter, ConnectionAccess access) => change.Kind switch
    {
        AccessChangeKind.Certificate => access.CertificateId == change.Name,
        AccessChangeKind.CaCertificate => access.CaCertificateId == change.Name,
        AccessChangeKind.Thing => meter.ClientId == change.Name,
        AccessChangeKind.Policy when change.Name is { } policy => access.Current?.PolicyNames.Contains(policy) == true,
        _ => true,
    };

    private async Task RecheckAsync(LiveConnection meter)
    {
        bool valid;
        try
        {
            valid = await _authenticator.RefreshAsync(meter.Access!);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Keeps the old grant; the next change or reconnect reads it again.
            LogRefreshFailed(_logger, ex, meter.ClientId);
            return;
        }

        if (valid)
        {
            return;
        }

        LogClosing(_logger, meter.ClientId, meter.Principal);
        meter.ServerDisconnectReason = DisconnectReasons.AuthError;
        try
        {
            await _mqtt.DisconnectClientAsync(meter.ClientId, new MqttServerClientDisconnectOptions { ReasonCode = MqttDisconnectReasonCode.NotAuthorized });
        }
        catch (InvalidOperationException)
        {
            // gone meanwhile
        }
    }

    [LoggerMessage(EventId = 1039, Level = LogLevel.Information, Message = "Closing the connection of {ClientId}: its certificate {Principal} no longer authenticates")]
    private static partial void LogClosing(ILogger logger, string clientId, string principal);

    [LoggerMessage(EventId = 1040, Level = LogLevel.Warning, Message = "Could not read the policies of {ClientId} again after an access change")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception, string clientId);
}
