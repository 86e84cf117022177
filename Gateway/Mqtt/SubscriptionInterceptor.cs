using MQTTnet.Protocol;
using MQTTnet.Server;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// Checks each requested subscription against the limits before MQTTnet creates it. A refused filter gets its
/// own SUBACK reason (MQTT 5: 0x97 quota exceeded, 0x8F topic filter invalid; MQTT 3.1.1: 0x80 failure); the
/// other filters of the same SUBSCRIBE are unaffected. A filter its policies do not allow (<c>iot:Subscribe</c> on
/// <c>topicfilter/{filter}</c>) gets MQTT 5 0x87; MQTT 3.1.1 is disconnected, as AWS does.
/// </summary>
internal sealed class SubscriptionInterceptor(Limits limits, Hosting.GatewayMetrics metrics)
{
    public Task HandleAsync(InterceptingSubscriptionEventArgs e)
    {
        var filter = SharedSubscriptionAlias.FromMqttnet(e.TopicFilter.Topic);
        if (LiveConnection.From(e.SessionItems) is { Restoring: false } counted && ++counted.FiltersInSubscribe > limits.Values.MaxFiltersPerSubscribe)
        {
            Refuse(e, MqttSubscribeReasonCode.QuotaExceeded, Limits.FiltersPerSubscribe, $"filter {counted.FiltersInSubscribe} of one SUBSCRIBE: '{filter}'");
        }
        else if (LiveConnection.From(e.SessionItems) is { Restoring: false, Access: { } access } denied && !access.MaySubscribe(filter))
        {
            metrics.SubscribeAuthErrors.Add(1);
            e.ProcessSubscription = false;
            e.Response.ReasonCode = MqttSubscribeReasonCode.NotAuthorized;
            if (denied.ProtocolVersion < 5)
            {
                denied.ServerDisconnectReason = Grains.Abstractions.Things.DisconnectReasons.AuthError;
                e.CloseConnection = true;
            }
        }
        else if (TopicFilter.IsShared(filter) && !TopicFilter.IsValidShared(filter))
        {
            // $share/{name}/{filter} with an empty name, a name with '/', '+' or '#', or an invalid filter.
            e.ProcessSubscription = false;
            e.Response.ReasonCode = MqttSubscribeReasonCode.TopicFilterInvalid;
        }
        else if (limits.TopicProblem(TopicFilter.MatchingFilter(filter)) is { } problem)
        {
            Refuse(e, MqttSubscribeReasonCode.TopicFilterInvalid, problem, $"filter '{filter}'");
        }
        else if (LiveConnection.From(e.SessionItems) is { } meter && !meter.Subscriptions.Contains(filter)
                 && meter.Subscriptions.Count >= limits.Values.MaxSubscriptionsPerConnection)
        {
            Refuse(e, MqttSubscribeReasonCode.QuotaExceeded, Limits.Subscriptions, $"already {meter.Subscriptions.Count} subscriptions");
        }
        else
        {
            // Counted here, not when MQTTnet reports the subscription: all filters of one SUBSCRIBE are checked
            // before any of them is reported.
            if (LiveConnection.From(e.SessionItems) is { } subscriber)
            {
                subscriber.Subscriptions.Add(filter);
                if (!subscriber.Restoring)
                {
                    metrics.Subscribes.Add(1);
                }
            }
        }

        return Task.CompletedTask;
    }

    private void Refuse(InterceptingSubscriptionEventArgs e, MqttSubscribeReasonCode code, string limit, string detail)
    {
        e.ProcessSubscription = false;
        e.Response.ReasonCode = code;
        limits.Exceeded(limit, e.ClientId, detail);
    }
}
