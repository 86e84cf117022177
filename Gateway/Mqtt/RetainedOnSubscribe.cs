using MQTTnet.Server;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// MQTTnet's own deliveries (retained messages on SUBSCRIBE; everything else is routed by
/// <see cref="Routing.LocalSubscribers"/>) go through the receiving connection's <see cref="Routing.Outbox"/> too, never
/// MQTTnet's send queue: one writer, one set of packet identifiers and one in-flight window per connection. So MQTTnet
/// is told not to enqueue them, and they are queued here instead, with the retain flag and the QoS and subscription
/// identifiers of the client's matching subscriptions.
/// </summary>
internal sealed class RetainedOnSubscribe(Routing.LocalSubscribers local)
{
    public Task HandleAsync(InterceptingClientApplicationMessageEnqueueEventArgs e)
    {
        e.AcceptEnqueue = false;
        local.DeliverTo(e.ReceiverClientId, e.ApplicationMessage, retained: true);
        return Task.CompletedTask;
    }
}
