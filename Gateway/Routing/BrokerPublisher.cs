using System.Buffers;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// The platform's own publishes (shadow responses, lifecycle and registry events): routed like a client's publish on
/// this node, to this node's subscribers and to every other node with a matching subscription.
/// </summary>
internal sealed class BrokerPublisher(ClusterRouter router, LocalSubscribers local) : IBrokerPublisher
{
    /// <summary>The sender of platform messages (no client has it, so no-local never hides them).</summary>
    public const string SenderClientId = "$aws";

    public void Publish(string topic, byte[] payload, int qos) => Publish(topic, payload, qos, SenderClientId);

    public void Publish(string topic, byte[] payload, int qos, string senderClientId)
    {
        var message = new MqttApplicationMessage
        {
            Topic = topic,
            Payload = new ReadOnlySequence<byte>(payload),
            QualityOfServiceLevel = (MqttQualityOfServiceLevel)qos,
            ContentType = "application/json",
        };
        local.Deliver(message, senderClientId);
        router.Forward(message, senderClientId, payload);
    }
}
