using MQTTnet.Packets;
using MQTTnet.Protocol;
using MQTTnet.Server;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// MQTTnet's packet hooks (every packet, so they only type-check the rest). Inbound: SUBSCRIBE/UNSUBSCRIBE get their
/// shared subscriptions aliased (<see cref="SharedSubscriptionAlias"/>) and SUBSCRIBE starts a new filter count for
/// the filters-per-SUBSCRIBE limit; PUBACK and PUBCOMP make room in the connection's <see cref="Routing.Outbox"/>; MQTT 5
/// protocol errors MQTTnet does not check end the connection with the reason code the specification names: a Topic
/// Alias of 0 or above the announced maximum (0x94), more unacknowledged QoS 1/2 publishes than the announced Receive
/// Maximum (0x93). Outbound: the PUBACK, PUBCOMP or failed PUBREC that completes a client's QoS 1/2 publish.
/// </summary>
internal sealed class InboundPackets(Limits limits, MqttServer mqtt)
{
    public Task InterceptAsync(InterceptingPacketEventArgs e)
    {
        switch (e.Packet)
        {
            case MqttPublishPacket publish when LiveConnection.From(e.SessionItems) is { } meter:
                if (publish.TopicAlias > limits.Values.TopicAliasMaximum || (publish.TopicAlias == 0 && meter.Transport?.SentTopicAliasZero == true))
                {
                    End(e, meter, Limits.TopicAlias, $"alias {publish.TopicAlias} (1..{limits.Values.TopicAliasMaximum})", MqttDisconnectReasonCode.TopicAliasInvalid);
                }
                else if (publish.QualityOfServiceLevel > MqttQualityOfServiceLevel.AtMostOnce && meter.ProtocolVersion >= 5
                    && Interlocked.Increment(ref meter.InboundUnacknowledged) > Limits.ReceiveMaximum)
                {
                    End(e, meter, Limits.ReceiveMaximumName, $"more than {Limits.ReceiveMaximum} QoS 1/2 publishes unacknowledged", MqttDisconnectReasonCode.ReceiveMaximumExceeded);
                }

                break;
            case MqttPubAckPacket ack:
                // Room in the client's window (MQTTnet still handles the packet: it counts as the client's activity).
                LiveConnection.From(e.SessionItems)?.Outbox?.Acknowledge(ack.PacketIdentifier);
                break;
            case MqttPubCompPacket complete:
                LiveConnection.From(e.SessionItems)?.Outbox?.Acknowledge(complete.PacketIdentifier);
                break;
            case MqttSubscribePacket:
                if (LiveConnection.From(e.SessionItems) is { } subscriber)
                {
                    subscriber.FiltersInSubscribe = 0;
                }

                break;
        }

        return SharedSubscriptionAlias.InterceptInboundAsync(e);
    }

    /// <summary>A client's QoS 1/2 publish is complete once the server sends PUBACK, PUBCOMP, or a PUBREC that refuses it.</summary>
    public static Task InterceptOutboundAsync(InterceptingPacketEventArgs e)
    {
        if (e.Packet is MqttPubAckPacket or MqttPubCompPacket or MqttPubRecPacket { ReasonCode: >= MqttPubRecReasonCode.UnspecifiedError }
            && LiveConnection.From(e.SessionItems) is { ProtocolVersion: >= 5 } meter
            && Interlocked.Decrement(ref meter.InboundUnacknowledged) < 0)
        {
            Interlocked.Exchange(ref meter.InboundUnacknowledged, 0);   // a PUBACK for a publish counted before a limit ended it
        }

        return Task.CompletedTask;
    }

    private void End(InterceptingPacketEventArgs e, LiveConnection meter, string limit, string detail, MqttDisconnectReasonCode code)
    {
        limits.Exceeded(limit, e.ClientId, detail);
        e.ProcessPacket = false;
        meter.ServerDisconnectReason = Grains.Abstractions.Things.DisconnectReasons.ClientError;

        // Not awaited: this runs inside the connection's own packet loop, which the disconnect stops.
        _ = Task.Run(() => mqtt.DisconnectClientAsync(e.ClientId, new MqttServerClientDisconnectOptions { ReasonCode = code }));
    }
}
