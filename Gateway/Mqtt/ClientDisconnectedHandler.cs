using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>A connection ended: stop metering it and record the end, with its last usage, on its thing grain.</summary>
internal sealed partial class ClientDisconnectedHandler(
    IGrainFactory grains,
    LiveConnections connections,
    LifecycleEvents lifecycle,
    IHostApplicationLifetime lifetime,
    TimeProvider time,
    GatewayMetrics metrics,
    ILogger<ClientDisconnectedHandler> logger)
{
    public async Task HandleAsync(ClientDisconnectedEventArgs e)
    {
        var meter = ConnectionMeter.From(e.SessionItems);
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

        try
        {
            await grains.GetGrain<IThingGrain>(e.ClientId).Disconnected(
                new ConnectionClosed(meter.SessionId, reason, clientInitiated, time.GetUtcNow(), meter.Take()));
        }
        catch (Exception ex)
        {
            LogThingUpdateFailed(logger, ex, e.ClientId);
        }

        try
        {
            await grains.GetGrain<IClientSessionGrain>(e.ClientId).Detach(meter.SessionId);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The next connection of the client id replaces the stale entry anyway.
            LogSessionDetachFailed(logger, ex, e.ClientId);
        }

        await lifecycle.DisconnectedAsync(meter, e.UserName, clientInitiated, reason);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not release the client id {ClientId} in the cluster")]
    private static partial void LogSessionDetachFailed(ILogger logger, Exception exception, string clientId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record the disconnect of {ClientId} on its thing")]
    private static partial void LogThingUpdateFailed(ILogger logger, Exception exception, string clientId);
}
