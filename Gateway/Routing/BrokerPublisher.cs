using System.Buffers;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// The platform's own publishes (shadow responses, lifecycle and registry events): routed like a client's publish on
/// this node, to this node's subscribers and to every other node with a matching subscription.
/// A platform message that an enabled rule selects also goes on the telemetry stream (best effort, as a QoS 0
/// publish), partitioned by its topic so one thing's shadow messages stay in order.
/// </summary>
internal sealed class BrokerPublisher(
    ClusterRouter router,
    LocalSubscribers local,
    Telemetry.TelemetryPublisher telemetry,
    Telemetry.RuleTopics rules,
    Hosting.NodeIdentity node,
    TimeProvider time) : IBrokerPublisher
{
    /// <summary>The sender of platform messages (no client has it, so no-local never hides them).</summary>
    public const string SenderClientId = "$aws";

    public void Publish(string topic, byte[] payload, int qos) => Publish(topic, payload, qos, SenderClientId);

    public void Publish(string topic, byte[] payload, int qos, MessageHeaders headers)
    {
        var message = new MqttApplicationMessage
        {
            Topic = topic,
            Payload = new ReadOnlySequence<byte>(payload),
            QualityOfServiceLevel = (MqttQualityOfServiceLevel)qos,
            ContentType = headers.ContentType,
            ResponseTopic = headers.ResponseTopic,
            CorrelationData = headers.CorrelationData,
            MessageExpiryInterval = headers.MessageExpirySeconds,
            PayloadFormatIndicator = headers.Utf8Payload ? MqttPayloadFormatIndicator.CharacterData : MqttPayloadFormatIndicator.Unspecified,
            UserProperties = headers.UserProperties is { Count: > 0 } properties
                ? [.. properties.Select(p => new MQTTnet.Packets.MqttUserProperty(p.Key, System.Text.Encoding.UTF8.GetBytes(p.Value)))]
                : null,
        };
        Publish(message, payload, SenderClientId);
    }

    public void Publish(string topic, byte[] payload, int qos, string senderClientId)
    {
        var message = new MqttApplicationMessage
        {
            Topic = topic,
            Payload = new ReadOnlySequence<byte>(payload),
            QualityOfServiceLevel = (MqttQualityOfServiceLevel)qos,
            ContentType = "application/json",
        };
        Publish(message, payload, senderClientId);
    }

    private void Publish(MqttApplicationMessage message, byte[] payload, string senderClientId)
    {
        var topic = message.Topic;
        router.Forward(message, senderClientId, payload);   // offline sessions first (see ClusterRouter.Forward)
        local.Deliver(message, senderClientId);
        // Only the platform's own topics: a rule's republish to a topic that some rule selects is not evaluated again
        // (no rule can feed itself in a loop).
        if (topic.StartsWith('$') && rules.Wants(topic))
        {
            var now = time.GetUtcNow();
            telemetry.Offer(
                new Grains.Abstractions.Telemetry.TelemetryMessage(topic, payload, senderClientId, 0, false, now, node.Name) { MessageId = Guid.CreateVersion7(now) },
                partitionKey: topic);
        }
    }
}
