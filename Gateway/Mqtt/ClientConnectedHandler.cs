using Microsoft.Extensions.Logging;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Gateway.Sessions;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// A connection was accepted (its client id and session were claimed before CONNACK): start metering it, host its
/// session here (resuming it, releasing it where it was), and publish its lifecycle event. Its thing grain hears of it
/// at its end (<see cref="ClientDisconnectedHandler"/>), or now when a dynamic thing group follows connectivity
/// (<see cref="IConnectivityIndexing"/>): an idle fleet's connects cost no thing activation, and the connection
/// directory answers for the open connections and indexes them (docs/architecture.md, "Connectivity").
/// </summary>
internal sealed partial class ClientConnectedHandler(
    IGrainFactory grains,
    SubscriptionTracker subscriptions,
    SessionHost sessions,
    Security.DeviceAuthenticator authenticator,
    IConnectivityIndexing indexing,
    LifecycleEvents lifecycle,
    LiveConnections connections,
    NodeIdentity node,
    Microsoft.Extensions.Options.IOptions<MqttOptions> options,
    TimeProvider time,
    GatewayMetrics metrics,
    ILogger<Routing.Outbox> outboxLogger,
    ILogger<ClientConnectedHandler> logger)
{
    /// <summary>AWS: at most 100 unacknowledged QoS 1 messages to a client; a client may ask for fewer (Receive Maximum).</summary>
    public const int MaxInFlight = 100;

    private readonly Routing.OutboxLimits _limits = new(
        options.Value.MaxPendingMessagesPerClient,
        Math.Max(options.Value.MaxQueuedMessagesPerClient, options.Value.MaxPendingMessagesPerClient),
        options.Value.PublisherWaitLimit);

    public async Task HandleAsync(ClientConnectedEventArgs e)
    {
        var state = sessions.ConnectStateOf(e.ClientId);
        var meter = new LiveConnection(e.ClientId, state?.SessionId ?? Guid.NewGuid().ToString(), (int)e.ProtocolVersion, e.RemoteEndPoint)
        {
            VersionNumber = state?.VersionNumber ?? sessions.NextLocalVersion(),
            ConnectedAt = state?.ConnectedAt ?? time.GetUtcNow(),
            SessionExpirySeconds = state?.Request.ExpirySeconds ?? 0,
            Will = state?.Request.Will,
            MaximumPacketSize = state?.MaximumPacketSize ?? 0,
            ReceiveMaximum = state?.ReceiveMaximum ?? 0,
            ViaSessionGrain = state?.ViaSessionGrain ?? true,
            Access = authenticator.Take(e.ClientId, e.RemoteEndPoint),
        };
        if (state?.Transport is { } transport)
        {
            var window = meter.ReceiveMaximum is > 0 and < MaxInFlight ? meter.ReceiveMaximum : MaxInFlight;
            meter.Outbox = new Routing.Outbox(meter, transport, window, _limits, metrics, outboxLogger, time);
            meter.Transport = transport;
            transport.Outbox = meter.Outbox;
            transport.TopicAliasMaximum = state.TopicAliasMaximum;   // server-assigned aliases, if the client allows them
        }

        meter.AttachTo(e.SessionItems);
        connections.Register(meter);
        metrics.Connects.Add(1);
        await subscriptions.ConnectedAsync(e);
        if (state is not null)
        {
            await sessions.ConnectedAsync(meter, state);
        }

        if (await indexing.DynamicGroupsFollowConnectivityAsync())
        {
            try
            {
                meter.ThingToldAtConnect = true;
                await grains.Reference<IThingGrain>(e.ClientId).Connected(meter.Opened(node.Name));
            }
            catch (Exception ex)
            {
                // The connection stays up: the device can still publish; its index entry is behind until its
                // disconnect. Refusing the device because the registry is slow would turn a hiccup into an outage.
                LogThingUpdateFailed(logger, ex, e.ClientId);
            }
        }

        await lifecycle.ConnectedAsync(meter, meter.Principal, Security.DeviceAuthenticator.IpOf(e.RemoteEndPoint));
    }

    [LoggerMessage(EventId = 1007, Level = LogLevel.Warning, Message = "Could not record the connection of {ClientId} on its thing")]
    private static partial void LogThingUpdateFailed(ILogger logger, Exception exception, string clientId);
}
