using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Abstractions.Sessions;

/// <summary>What a message becomes for one persistent session, by its subscriptions (the gateway and the session grain agree).</summary>
public static class SessionMatch
{
    /// <summary>
    /// The message as this session gets it: the highest QoS its matching subscriptions grant (QoS 0 is not queued for a
    /// session that is not connected, as AWS IoT), no-local honoured, retain as published where asked, subscription
    /// ids; null when none of its subscriptions takes it.
    /// </summary>
    public static QueuedMessage? Shape(string clientId, IReadOnlyList<SessionSubscription> subscriptions, ForwardedMessage message, bool retain)
    {
        ArgumentNullException.ThrowIfNull(subscriptions);
        ArgumentNullException.ThrowIfNull(message);
        var granted = -1;
        var retainAsPublished = false;
        List<uint>? ids = null;
        foreach (var s in subscriptions)
        {
            if ((s.NoLocal && message.SenderClientId == clientId) || !TopicFilter.Matches(s.Filter, message.Topic))
            {
                continue;
            }

            granted = Math.Max(granted, Math.Min(message.Qos, s.Qos));
            retainAsPublished |= s.RetainAsPublished;
            if (s.SubscriptionIdentifier > 0)
            {
                (ids ??= []).Add(s.SubscriptionIdentifier);
            }
        }

        return granted < 1 ? null : new QueuedMessage(message with { Qos = granted, SharedTarget = null }, retainAsPublished && retain, ids, 0, default);
    }
}
