using Microsoft.Extensions.Logging;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>A connection was accepted: start metering it and tell its thing grain (which activates it).</summary>
internal sealed partial class ClientConnectedHandler(
    IGrainFactory grains,
    SubscriptionTracker subscriptions,
    LifecycleEvents lifecycle,
    UsageMeter usage,
    NodeIdentity node,
    TimeProvider time,
    GatewayMetrics metrics,
    ILogger<ClientConnectedHandler> logger)
{
    public async Task HandleAsync(ClientConnectedEventArgs e)
    {
        var meter = new ConnectionMeter(e.ClientId, Guid.NewGuid().ToString(), (int)e.ProtocolVersion, e.RemoteEndPoint);
        meter.AttachTo(e.SessionItems);
        usage.Register(meter);
        metrics.Connects.Add(1);
        await subscriptions.ConnectedAsync(e);
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

    private static string? IpAddressOf(System.Net.EndPoint? endPoint) => endPoint switch
    {
        System.Net.IPEndPoint { Address.IsIPv4MappedToIPv6: true } ip => ip.Address.MapToIPv4().ToString(),
        System.Net.IPEndPoint ip => ip.Address.ToString(),
        _ => null,
    };

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not record the connection of {ClientId} on its thing")]
    private static partial void LogThingUpdateFailed(ILogger logger, Exception exception, string clientId);
}
