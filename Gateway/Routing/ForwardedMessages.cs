using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Routing;

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
}
