using System.Reflection;
using MQTTnet.Packets;
using MQTTnet.Server;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// What MQTTnet's session of a connection had not yet had acknowledged when the connection ended: every QoS 1/2
/// message it queued or sent without PUBACK/PUBCOMP. MQTTnet keeps these only in its own session, which it deletes
/// with the connection; for a persistent session they move to the cluster's queue instead of being lost. MQTTnet
/// exposes neither the session behind <see cref="MqttSessionStatus"/> nor the list, so both are reached by
/// reflection, pinned to MQTTnet 5.2 (the persistent-session tests with an unacknowledged message cover it).
/// </summary>
internal static class MqttnetSessions
{
    private static readonly FieldInfo? SessionField = typeof(MqttSessionStatus).GetField("_session", BindingFlags.NonPublic | BindingFlags.Instance);

    public static object? SessionOf(MqttSessionStatus status) => SessionField?.GetValue(status);

    /// <summary>The session's unacknowledged QoS 1/2 messages, oldest first, as they would be queued.</summary>
    public static IReadOnlyList<QueuedMessage> Unacknowledged(object? session)
    {
        if (session?.GetType().GetField("_unacknowledgedPublishPackets", BindingFlags.NonPublic | BindingFlags.Instance)?.GetValue(session) is not List<MqttPublishPacket> packets)
        {
            return [];
        }

        lock (packets)
        {
            return [.. packets.Select(ToQueued)];
        }
    }

    /// <summary>A PUBLISH packet as a queued message (its QoS, retain flag and subscription ids as sent).</summary>
    public static QueuedMessage ToQueued(MqttPublishPacket p) => new(
        new ForwardedMessage(
            p.Topic,
            p.Payload.IsEmpty ? [] : System.Buffers.BuffersExtensions.ToArray(p.Payload),
            (int)p.QualityOfServiceLevel,
            "",
            p.ContentType,
            p.ResponseTopic,
            p.CorrelationData,
            p.UserProperties is { Count: > 0 } properties ? [.. properties.Select(u => new KeyValuePair<string, byte[]>(u.Name, u.ValueBuffer.ToArray()))] : null,
            p.MessageExpiryInterval,
            (int)p.PayloadFormatIndicator),
        p.Retain,
        p.SubscriptionIdentifiers is { Count: > 0 } ids ? [.. ids] : null,
        0,
        default);
}
