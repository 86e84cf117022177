using MQTTnet.Packets;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// MQTTnet's inbound packet hook (every packet, so it only type-checks the rest): SUBSCRIBE/UNSUBSCRIBE get their
/// shared subscriptions aliased (<see cref="SharedSubscriptionAlias"/>) and SUBSCRIBE starts a new filter count for the
/// filters-per-SUBSCRIBE limit; PUBACK and PUBCOMP make room in the connection's <see cref="Routing.Outbox"/>; a PUBLISH using a topic alias above the announced maximum is a protocol error
/// (MQTT 5 DISCONNECT 0x94), which MQTTnet does not check.
/// </summary>
internal sealed class InboundPackets(Limits limits, MqttServer mqtt)
{
    public Task InterceptAsync(InterceptingPacketEventArgs e)
    {
        switch (e.Packet)
        {
            case MqttPublishPacket { TopicAlias: > 0 } publish when publish.TopicAlias > limits.Values.TopicAliasMaximum:
                limits.Exceeded(Limits.TopicAlias, e.ClientId, $"alias {publish.TopicAlias} > {limits.Values.TopicAliasMaximum}");
                e.ProcessPacket = false;
                if (ConnectionMeter.From(e.SessionItems) is { } meter)
                {
                    meter.ServerDisconnectReason = Grains.Abstractions.Things.DisconnectReasons.ClientError;
                }

                // Not awaited: this runs inside the connection's own packet loop, which the disconnect stops.
                _ = Task.Run(() => mqtt.DisconnectClientAsync(e.ClientId, new MqttServerClientDisconnectOptions { ReasonCode = MqttDisconnectReasonCode.TopicAliasInvalid }));
                break;
            case MqttPubAckPacket ack:
                // Room in the client's window (MQTTnet still handles the packet: it counts as the client's activity).
                ConnectionMeter.From(e.SessionItems)?.Outbox?.Acknowledge(ack.PacketIdentifier);
                break;
            case MqttPubCompPacket complete:
                ConnectionMeter.From(e.SessionItems)?.Outbox?.Acknowledge(complete.PacketIdentifier);
                break;
            case MqttSubscribePacket:
                if (ConnectionMeter.From(e.SessionItems) is { } subscriber)
                {
                    subscriber.FiltersInSubscribe = 0;
                }

                break;
        }

        return SharedSubscriptionAlias.InterceptInboundAsync(e);
    }
}
