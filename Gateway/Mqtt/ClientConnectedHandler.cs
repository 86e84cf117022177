using Microsoft.Extensions.Logging;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Gateway.Sessions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// A connection was accepted (its client id and session were claimed before CONNACK): start metering it, host its
/// session here (resuming it, releasing it where it was), and tell its thing grain.
/// </summary>
internal sealed partial class ClientConnectedHandler(
    IGrainFactory grains,
    SubscriptionTracker subscriptions,
    SessionHost sessions,
    Security.DeviceAuthenticator authenticator,
    MqttServer mqtt,
    LifecycleEvents lifecycle,
    LiveConnections connections,
    NodeIdentity node,
    TimeProvider time,
    GatewayMetrics metrics,
    ILogger<ClientConnectedHandler> logger)
{
    public async Task HandleAsync(ClientConnectedEventArgs e)
    {
        var state = sessions.TakeConnectState(e.ClientId);
        var meter = new ConnectionMeter(e.ClientId, state?.SessionId ?? Guid.NewGuid().ToString(), (int)e.ProtocolVersion, e.RemoteEndPoint)
        {
            SessionExpirySeconds = state?.Request.ExpirySeconds ?? 0,
            Will = state?.Request.Will,
            MaximumPacketSize = state?.MaximumPacketSize ?? 0,
            ReceiveMaximum = state?.ReceiveMaximum ?? 0,
            Access = authenticator.Take(e.ClientId, e.RemoteEndPoint),
        };
        meter.AttachTo(e.SessionItems);
        connections.Register(meter);
        metrics.Connects.Add(1);
        await subscriptions.ConnectedAsync(e);
        if (state is not null)
        {
            await sessions.ConnectedAsync(meter, state);
        }

        if (meter.SessionExpirySeconds > 0)
        {
            try
            {
                meter.MqttSession = MqttnetSessions.SessionOf(await mqtt.GetSessionAsync(e.ClientId));
            }
            catch (InvalidOperationException)
            {
                // the connection is gone already
            }
        }

        try
        {
            meter.VersionNumber = await grains.GetGrain<IThingGrain>(e.ClientId).Connected(
                new ConnectionOpened(meter.SessionId, e.ClientId, e.RemoteEndPoint?.ToString(), node.Name, meter.ProtocolVersion, time.GetUtcNow()));
        }
        catch (Exception ex)
        {
            // The connection stays up: the device can still publish; its connectivity record is behind until the
            // next connect. Refusing the device because the registry is slow would turn a hiccup into an outage.
            LogThingUpdateFailed(logger, ex, e.ClientId);
        }

        await lifecycle.ConnectedAsync(meter, meter.Principal, Security.DeviceAuthenticator.IpOf(e.RemoteEndPoint));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record the connection of {ClientId} on its thing")]
    private static partial void LogThingUpdateFailed(ILogger logger, Exception exception, string clientId);
}
