using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>Counts each message routed to a subscriber against the receiving connection.</summary>
internal sealed class DeliveryCounter(LiveConnections connections, GatewayMetrics metrics)
{
    public Task HandleAsync(InterceptingClientApplicationMessageEnqueueEventArgs e)
    {
        if (connections.Find(e.ReceiverClientId) is { } meter)
        {
            meter.CountOut(e.ApplicationMessage.Payload.Length);
        }

        metrics.PublishesOut.Add(1);
        return Task.CompletedTask;
    }
}
