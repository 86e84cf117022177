using System.Reflection;
using MQTTnet.Packets;
using MQTTnet.Server;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// The CONNECT packet behind <see cref="ValidatingConnectionEventArgs"/>. MQTTnet does not expose it, but two
/// things need it: assigning a client id to an MQTT 3.1.1 client, and taking the will out of MQTTnet's hands
/// (MQTTnet has no will delay and cannot publish a will once its node is gone). Reached by reflection, pinned to
/// MQTTnet 5.2; tests cover both uses.
/// </summary>
internal static class ConnectPackets
{
    private static readonly FieldInfo? Field =
        typeof(ValidatingConnectionEventArgs).GetField("_connectPacket", BindingFlags.NonPublic | BindingFlags.Instance);

    public static MqttConnectPacket? Of(ValidatingConnectionEventArgs e) => Field?.GetValue(e) as MqttConnectPacket;

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
