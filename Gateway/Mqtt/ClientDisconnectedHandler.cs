using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;
using MQTTnet.Protocol;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Gateway.Sessions;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// A connection ended: stop metering it, record the connection (its start, its end and its last usage) on its thing grain
/// (while the node stops, with its keeper, <see cref="EndKeeper"/>), end or keep its session, and publish its will when
/// the end was not graceful (AWS: on every disconnect the client did not ask for).
/// </summary>
internal sealed partial class ClientDisconnectedHandler(
    IGrainFactory grains,
    SessionHost sessions,
    LiveConnections connections,
    EndKeeper ends,
    LifecycleEvents lifecycle,
    NodeIdentity node,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    GatewayMetrics metrics,
    ILogger<ClientDisconnectedHandler> logger)
{
    public async Task HandleAsync(ClientDisconnectedEventArgs e)
    {
        var meter = LiveConnection.From(e.SessionItems);
        if (meter is null || meter.ClientId != e.ClientId)
        {
            return;
        }

        connections.Unregister(meter);
        metrics.Disconnects.Add(1);
        var clientInitiated = e.DisconnectType == MqttClientDisconnectType.Clean;
        var reason = e.DisconnectType switch
        {
            MqttClientDisconnectType.Takeover => DisconnectReasons.DuplicateClientId,
            _ when meter.ServerDisconnectReason is { } serverReason => serverReason,
            MqttClientDisconnectType.Clean => DisconnectReasons.ClientInitiated,
            _ when lifetime.ApplicationStopping.IsCancellationRequested => DisconnectReasons.ServerInitiated,
            _ => DisconnectReasons.ConnectionLost,
        };

        var at = time.GetUtcNow();
        var closed = new ConnectionClosed(meter.SessionId, reason, clientInitiated, at, meter.Take(), meter.Opened(node.Name));
        // A stopping node closes all its connections at once: their ends go to their keepers, not to every thing of
        // the fleet during the stop. Unless the thing heard of the connection at its start: it would look connected
        // until its kept end arrived.
        try
        {
            await (lifetime.ApplicationStopping.IsCancellationRequested && !meter.ThingToldAtConnect
                ? ends.KeepAsync(e.ClientId, closed)
                : grains.Reference<IThingGrain>(e.ClientId).Disconnected(closed));
        }
        catch (Exception ex)
        {
            LogThingUpdateFailed(logger, ex, e.ClientId);
        }

        // MQTT 5 DISCONNECT 0x04 asks for the will; a takeover's will is published by the taking node.
        var publishWill = !meter.PreventWill && e.DisconnectType switch
        {
            MqttClientDisconnectType.Takeover => false,
            MqttClientDisconnectType.Clean => e.ReasonCode == MqttDisconnectReasonCode.DisconnectWithWillMessage,
            _ => true,
        };
        // A DISCONNECT may change the expiry of a persistent session (0: it ends); DeleteConnection may end it.
        uint? expiry = meter.EndSession ? 0 : e.SessionExpiryInterval > 0 ? sessions.GrantExpiry(MQTTnet.Formatter.MqttProtocolVersion.V500, false, e.SessionExpiryInterval) : null;
        WillMessage? will = null;
        if (meter.ViaSessionGrain)
        {
            try
            {
                will = await grains.Reference<IClientSessionGrain>(e.ClientId).Detach(meter.SessionId, new SessionEnd(publishWill, expiry));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // The session grain cannot be reached: publish the will anyway (at least once beats never).
                LogSessionDetachFailed(logger, ex, e.ClientId);
                will = publishWill ? meter.Will : null;
            }
        }

        try
        {
            await grains.ConnectionDirectoryOf(e.ClientId).Release([new ReleasedConnection(e.ClientId, meter.SessionId, reason, at)]);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Harmless if it stays: the next connect of this client id replaces it, and a takeover of a connection
            // that has ended closes nothing.
            LogSessionDetachFailed(logger, ex, e.ClientId);
        }

        await sessions.DisconnectedAsync(meter, sessionContinues: meter.SessionExpirySeconds > 0 && expiry != 0, will);
        await lifecycle.DisconnectedAsync(meter, meter.Principal, clientInitiated, reason);
    }

    [LoggerMessage(EventId = 1008, Level = LogLevel.Warning, Message = "Could not record the end of the session of {ClientId} in the cluster")]
    private static partial void LogSessionDetachFailed(ILogger logger, Exception exception, string clientId);

    [LoggerMessage(EventId = 1009, Level = LogLevel.Warning, Message = "Could not record the disconnect of {ClientId} on its thing")]
    private static partial void LogThingUpdateFailed(ILogger logger, Exception exception, string clientId);
}
