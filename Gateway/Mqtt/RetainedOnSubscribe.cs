using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// Counts each message MQTTnet routes to a subscriber itself (retained messages on SUBSCRIBE; everything else is
/// delivered by <see cref="Routing.LocalSubscribers"/>) against the receiving connection, and keeps from a client
/// what would exceed its MQTT 5 Maximum Packet Size (the spec says the server discards it; MQTTnet does not check).
/// </summary>
internal sealed class DeliveryCounter(LiveConnections connections, GatewayMetrics metrics)
{
    public Task HandleAsync(InterceptingClientApplicationMessageEnqueueEventArgs e)
    {
        if (connections.Find(e.ReceiverClientId) is { } meter)
        {
            var message = e.ApplicationMessage;
            if ((meter.MaximumPacketSize > 0 && EstimatedSize(message) > meter.MaximumPacketSize)
                || (meter.Access is { } access && !access.MayReceive(message.Topic)))
            {
                e.AcceptEnqueue = false;
                return Task.CompletedTask;
            }

            meter.CountOut(message.Payload.Length);
        }

        metrics.PublishesOut.Add(1);
        return Task.CompletedTask;
    }

    /// <summary>An upper bound of the PUBLISH packet's size: fixed header, topic, packet id, properties, payload.</summary>
    public static long EstimatedSize(MQTTnet.MqttApplicationMessage m)
    {
        long size = 5 + 2 + System.Text.Encoding.UTF8.GetByteCount(m.Topic) + 2 + 4 + m.Payload.Length;
        size += m.ContentType is null ? 0 : 3 + System.Text.Encoding.UTF8.GetByteCount(m.ContentType);
        size += m.ResponseTopic is null ? 0 : 3 + System.Text.Encoding.UTF8.GetByteCount(m.ResponseTopic);
        size += m.CorrelationData is null ? 0 : 3 + m.CorrelationData.Length;
        size += m.MessageExpiryInterval > 0 ? 5 : 0;
        size += m.UserProperties?.Sum(p => 5L + System.Text.Encoding.UTF8.GetByteCount(p.Name) + p.ValueBuffer.Length) ?? 0;
        return size + 16;   // payload format indicator, subscription ids
    }
}
