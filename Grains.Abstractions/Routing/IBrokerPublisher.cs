namespace OrleansIot.Grains.Abstractions.Routing;

/// <summary>
/// Publishes a message from the platform itself (shadow responses, registry events) to every matching subscriber
/// in the cluster, as if a client had published it on this node. Provided by the gateway co-hosted in each silo,
/// so a grain publishes through its own node without a grain call.
/// </summary>
public interface IBrokerPublisher
{
    /// <summary>Routes the message now (this node's subscribers and the other nodes'); does not wait for delivery.</summary>
    /// <param name="topic">A topic name (no wildcards).</param>
    /// <param name="payload">The payload; the caller must not change it afterwards.</param>
    /// <param name="qos">The QoS it is published with (subscribers get at most their subscription's QoS).</param>
    void Publish(string topic, byte[] payload, int qos);

    /// <summary>Routes the message with MQTT 5 properties (what a rule's republish sets); brokers without them ignore them.</summary>
    /// <param name="topic">A topic name (no wildcards).</param>
    /// <param name="payload">The payload; the caller must not change it afterwards.</param>
    /// <param name="qos">The QoS it is published with.</param>
    /// <param name="headers">The MQTT 5 properties.</param>
    void Publish(string topic, byte[] payload, int qos, MessageHeaders headers) => Publish(topic, payload, qos);
}

/// <summary>MQTT 5 properties of a published message (AWS republish's <c>headers</c>).</summary>
/// <param name="ContentType">Content type, e.g. <c>application/json</c>.</param>
/// <param name="ResponseTopic">Where a response is expected.</param>
/// <param name="CorrelationData">Correlation data (bytes).</param>
/// <param name="MessageExpirySeconds">Seconds until the message expires (0: never).</param>
/// <param name="Utf8Payload">True when the payload is UTF-8 text (payload format indicator 1).</param>
/// <param name="UserProperties">User properties, in order.</param>
public sealed record MessageHeaders(
    string? ContentType,
    string? ResponseTopic,
    byte[]? CorrelationData,
    uint MessageExpirySeconds,
    bool Utf8Payload,
    IReadOnlyList<KeyValuePair<string, string>>? UserProperties);
