using MQTTnet.Server;
using OrleansIot.Gateway.Routing;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// Keeps the cluster router's view of this node's subscriptions in step with MQTTnet's: subscribe, unsubscribe,
/// and the end of a session (a non-persistent session ends with its connection; a clean start replaces it).
/// </summary>
internal sealed class SubscriptionTracker(ClusterRouter router, LocalSubscribers local, MQTTnet.Server.MqttServer mqtt, Sessions.SessionHost sessions, LifecycleEvents lifecycle)
{
    private const string CleanStartKey = "orleansiot.cleanstart";

    /// <summary>Called by the connection validator once a CONNECT is accepted.</summary>
    public static void MarkCleanStart(ValidatingConnectionEventArgs e)
    {
        if (e.CleanSession != false)
        {
            e.SessionItems[CleanStartKey] = true;
        }
    }

    /// <summary>
    /// A clean start discards the client's previous session without MQTTnet reporting it deleted, so its old
    /// subscriptions are dropped here, before the new connection can subscribe.
    /// </summary>
    public Task ConnectedAsync(ClientConnectedEventArgs e)
    {
        if (e.SessionItems[CleanStartKey] is true)
        {
            e.SessionItems.Remove(CleanStartKey);
            local.SessionEnded(e.ClientId);
            return router.SessionEndedAsync(e.ClientId);
        }

        return Task.CompletedTask;
    }

    public async Task SubscribedAsync(ClientSubscribedTopicEventArgs e)
    {
        var filter = SharedSubscriptionAlias.FromMqttnet(e.TopicFilter.Topic);
        object? session = null;
        try
        {
            session = MqttnetInternals.SessionOf(await mqtt.GetSessionAsync(e.ClientId));
        }
        catch (InvalidOperationException)
        {
            // the session is gone already
        }

        local.Subscribed(e.ClientId, filter, session);
        await router.SubscribedAsync(e.ClientId, filter, (int)e.TopicFilter.QualityOfServiceLevel);
        if (LiveConnection.From(e.SessionItems) is { Restoring: false } meter)
        {
            // A persistent session's subscription is stored before the SUBACK: it must survive this node.
            await sessions.SubscribedAsync(meter, filter, e.TopicFilter);
            await lifecycle.SubscriptionChangedAsync(meter, meter.Principal, subscribed: true, [filter]);
        }
    }

    public async Task UnsubscribedAsync(ClientUnsubscribedTopicEventArgs e)
    {
        var filter = SharedSubscriptionAlias.FromMqttnet(e.TopicFilter);
        local.Unsubscribed(e.ClientId, filter);
        await router.UnsubscribedAsync(e.ClientId, filter);
        if (LiveConnection.From(e.SessionItems) is { } meter)
        {
            meter.Subscriptions.Remove(filter);
            await sessions.UnsubscribedAsync(meter, filter);
            await lifecycle.SubscriptionChangedAsync(meter, meter.Principal, subscribed: false, [filter]);
        }
    }

    /// <summary>
    /// MQTTnet ends every session with its connection; a persistent one lives on in the session host (its filters
    /// stay announced), everything else ends here.
    /// </summary>
    public Task SessionDeletedAsync(SessionDeletedEventArgs e)
    {
        // The persistent session takes over what its connection was sent without acknowledging, what was still queued
        // for it, and (matched offline from now on) what comes next; only then do its live subscriptions end, so no
        // message falls between the two.
        var kept = sessions.KeepOffline(e.Id, LiveConnection.From(e.SessionItems)?.Outbox);
        local.SessionEnded(e.Id);
        return kept ? Task.CompletedTask : router.SessionEndedAsync(e.Id);
    }
}
