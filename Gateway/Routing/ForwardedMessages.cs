using MQTTnet;
using MQTTnet.Packets;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Routing;

/// <summary>Converts between MQTTnet's message and the serializable form that crosses nodes, MQTT 5 properties included.</summary>
internal static class ForwardedMessages
{
    public static ForwardedMessage From(MqttApplicationMessage message, string senderClientId, byte[] payload) => new(
        message.Topic,
        payload,
        (int)message.QualityOfServiceLevel,
        senderClientId,
        message.ContentType,
        message.ResponseTopic,
        message.CorrelationData,
        message.UserProperties is { Count: > 0 } properties ? [.. properties.Select(p => new KeyValuePair<string, byte[]>(p.Name, p.ValueBuffer.ToArray()))] : null,
        message.MessageExpiryInterval,
        (int)message.PayloadFormatIndicator,
        MessageId: Guid.CreateVersion7());

    public static MqttApplicationMessage ToMqtt(ForwardedMessage m, bool retain = false)
    {
        var builder = new MqttApplicationMessageBuilder()
            .WithTopic(m.Topic)
            .WithPayload(m.Payload)
            .WithQualityOfServiceLevel((MqttQualityOfServiceLevel)m.Qos)
            .WithPayloadFormatIndicator((MqttPayloadFormatIndicator)m.PayloadFormatIndicator)
            .WithRetainFlag(retain);
        if (m.ContentType is not null)
        {
            builder.WithContentType(m.ContentType);
        }

        if (m.ResponseTopic is not null)
        {
            builder.WithResponseTopic(m.ResponseTopic);
        }

        if (m.CorrelationData is not null)
        {
            builder.WithCorrelationData(m.CorrelationData);
        }

        if (m.MessageExpiryInterval > 0)
        {
            builder.WithMessageExpiryInterval(m.MessageExpiryInterval);
        }

        if (m.UserProperties is not null)
        {
            foreach (var (name, value) in m.UserProperties)
            {
                builder.WithUserProperty(name, new ReadOnlyMemory<byte>(value));
            }
        }

        return builder.Build();
    }

    /// <summary>A PUBLISH packet as a queued message (its QoS, retain flag and subscription ids as sent).</summary>
    public static QueuedMessage ToQueued(MqttPublishPacket p) => new(
        new ForwardedMessage(
            p.Topic,
            p.Payload.IsEmpty ? [] : System.Buffers.BuffersExtensions.ToArray(p.Payload),
            (int)p.QualityOfServiceLevel,
            "",
            p.ContentType,
            p.ResponseTopic,
            p.CorrelationData,
            p.UserProperties is { Count: > 0 } properties ? [.. properties.Select(u => new KeyValuePair<string, byte[]>(u.Name, u.ValueBuffer.ToArray()))] : null,
            p.MessageExpiryInterval,
            (int)p.PayloadFormatIndicator),
        p.Retain,
        p.SubscriptionIdentifiers is { Count: > 0 } ids ? [.. ids] : null,
        0,
        default);
}
