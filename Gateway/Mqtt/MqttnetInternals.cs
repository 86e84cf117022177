using System.Reflection;
using MQTTnet.Packets;
using MQTTnet.Server;
using MQTTnet.Server.Internal;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// Every non-public member of MQTTnet the gateway uses, in one place, checked once when the node starts
/// (<see cref="Verify"/>: a missing one stops the node with a message saying which, never a silent null later), each
/// covered by a test, with MQTTnet pinned to the exact version they were written against (Directory.Packages.props).
/// </summary>
internal static class MqttnetInternals
{
    /// <summary>The MQTTnet version these accessors were written and tested against.</summary>
    public const string PinnedVersion = "5.2.0.1603";

    // The CONNECT behind a validation: a client id is assigned to an MQTT 3.1.1 client on it, and the will is taken
    // out of it (MQTTnet has no will delay and cannot publish a will once its node is gone).
    private static readonly FieldInfo? ConnectPacketField =
        typeof(ValidatingConnectionEventArgs).GetField("_connectPacket", BindingFlags.NonPublic | BindingFlags.Instance);

    // The session behind MqttServer.GetSessionAsync's status: LocalSubscribers asks it TryCheckSubscriptions (QoS,
    // no-local, retain as published, subscription ids) for each delivery, exactly as MQTTnet's own dispatch does.
    private static readonly FieldInfo? SessionField =
        typeof(MqttSessionStatus).GetField("_session", BindingFlags.NonPublic | BindingFlags.Instance);

    /// <summary>Throws, naming what is missing, when this MQTTnet lacks a member the gateway relies on.</summary>
    public static void Verify()
    {
        List<string> missing = [];
        if (ConnectPacketField?.FieldType != typeof(MqttConnectPacket))
        {
            missing.Add($"{nameof(ValidatingConnectionEventArgs)}._connectPacket ({nameof(MqttConnectPacket)})");
        }

        if (SessionField?.FieldType != typeof(MqttSession))
        {
            missing.Add($"{nameof(MqttSessionStatus)}._session ({nameof(MqttSession)})");
        }

        if (missing.Count > 0)
        {
            var loaded = typeof(MqttSessionStatus).Assembly.GetName().Version;
            throw new InvalidOperationException(
                $"MQTTnet {loaded} lacks what the gateway relies on: {string.Join(", ", missing)}. OrleansIot is built and tested with MQTTnet {PinnedVersion} (Directory.Packages.props pins it).");
        }
    }

    public static MqttConnectPacket ConnectPacketOf(ValidatingConnectionEventArgs e) => (MqttConnectPacket)ConnectPacketField!.GetValue(e)!;

    public static MqttSession SessionOf(MqttSessionStatus status) => (MqttSession)SessionField!.GetValue(status)!;
}
