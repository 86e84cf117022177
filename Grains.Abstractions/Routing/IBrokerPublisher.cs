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
}
