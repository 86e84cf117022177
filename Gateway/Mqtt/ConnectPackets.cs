using MQTTnet.Packets;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// The will of a CONNECT (reached through <see cref="MqttnetInternals.ConnectPacketOf"/>), taken out of MQTTnet's
/// hands: MQTTnet has no will delay and cannot publish a will once its node is gone; the cluster does both.
/// </summary>
internal static class ConnectPackets
{

    /// <summary>Removes the will from the CONNECT (so MQTTnet never publishes it) and returns it.</summary>
    public static WillMessage? TakeWill(MqttConnectPacket packet, string clientId)
    {
        if (!packet.WillFlag)
        {
            return null;
        }

        var message = new ForwardedMessage(
            packet.WillTopic,
            packet.WillMessage ?? [],
            (int)packet.WillQoS,
            clientId,
            packet.WillContentType,
            packet.WillResponseTopic,
            packet.WillCorrelationData,
            packet.WillUserProperties is { Count: > 0 } properties ? [.. properties.Select(p => new KeyValuePair<string, byte[]>(p.Name, p.ValueBuffer.ToArray()))] : null,
            packet.WillMessageExpiryInterval,
            (int)packet.WillPayloadFormatIndicator);
        packet.WillFlag = false;
        return new WillMessage(message, packet.WillRetain, packet.WillDelayInterval);
    }
}
