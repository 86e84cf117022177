using Microsoft.Extensions.Logging;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>A connection was accepted: start metering it and tell its thing grain (which activates it).</summary>
internal sealed partial class ClientConnectedHandler(
    IGrainFactory grains,
    SubscriptionTracker subscriptions,
    LifecycleEvents lifecycle,
    Routing.ClusterRouter router,
    LiveConnections connections,
    NodeIdentity node,
    TimeProvider time,
    GatewayMetrics metrics,
    ILogger<ClientConnectedHandler> logger)
{
    public async Task HandleAsync(ClientConnectedEventArgs e)
    {
        var meter = new ConnectionMeter(e.ClientId, Guid.NewGuid().ToString(), (int)e.ProtocolVersion, e.RemoteEndPoint);
        meter.AttachTo(e.SessionItems);
        connections.Register(meter);
        metrics.Connects.Add(1);
        await subscriptions.ConnectedAsync(e);

        // First claim the client id cluster-wide (closing an older connection elsewhere), so that once the thing
        // shows this connection, the API can also find and close it.
        await TakeOverAsync(e.ClientId, meter);
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

        await lifecycle.ConnectedAsync(meter, e.UserName, IpAddressOf(e.RemoteEndPoint));
    }

    /// <summary>
    /// One connection per client id in the whole cluster: MQTTnet closes an older connection on this node itself;
    /// one on another node is closed by that node, asked here (MQTT 5 reason 0x8E, DUPLICATE_CLIENTID).
    /// </summary>
    private async Task TakeOverAsync(string clientId, ConnectionMeter meter)
    {
        try
        {
            var previous = await grains.GetGrain<IClientSessionGrain>(clientId).Attach(new ClientConnection(meter.SessionId, router.Self, time.GetUtcNow()));
            if (previous is not null && previous.Node.NodeId != router.NodeId)
            {
                await previous.Node.Reference.DisconnectClient(clientId, previous.SessionId, DisconnectReasons.DuplicateClientId).WaitAsync(TakeoverTimeout);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The old node may be dead (then its connection is gone anyway) or slow: the new connection stays.
            LogTakeoverFailed(logger, ex, clientId);
        }
    }

    private static string? IpAddressOf(System.Net.EndPoint? endPoint) => endPoint switch
    {
        System.Net.IPEndPoint { Address.IsIPv4MappedToIPv6: true } ip => ip.Address.MapToIPv4().ToString(),
        System.Net.IPEndPoint ip => ip.Address.ToString(),
        _ => null,
    };

    private static readonly TimeSpan TakeoverTimeout = TimeSpan.FromSeconds(5);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not close the older connection of {ClientId} on another node")]
    private static partial void LogTakeoverFailed(ILogger logger, Exception exception, string clientId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record the connection of {ClientId} on its thing")]
    private static partial void LogThingUpdateFailed(ILogger logger, Exception exception, string clientId);
}
