using MQTTnet.Packets;
using MQTTnet.Server;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// MQTTnet refuses every <c>$share/...</c> subscription itself (SUBACK 0x9E) before any interceptor sees it. The
/// cluster router implements shared subscriptions, so inbound SUBSCRIBE and UNSUBSCRIBE packets carry them past
/// MQTTnet under an alias (a prefix no client sends: it contains DEL), which never matches a published topic in
/// MQTTnet; every handler maps the alias back, so the rest of the gateway only sees <c>$share/...</c>.
/// </summary>
internal static class SharedSubscriptionAlias
{
    private const string Alias = "$share\u007f/";

    public static string ToMqttnet(string filter) =>
        TopicFilter.IsShared(filter) ? Alias + filter[TopicFilter.SharePrefix.Length..] : filter;

    public static string FromMqttnet(string filter) =>
        filter.StartsWith(Alias, StringComparison.Ordinal) ? TopicFilter.SharePrefix + filter[Alias.Length..] : filter;

    /// <summary>MQTTnet's inbound packet hook: SUBSCRIBE and UNSUBSCRIBE only, everything else passes untouched.</summary>
    public static Task InterceptInboundAsync(InterceptingPacketEventArgs e)
    {
        switch (e.Packet)
        {
            case MqttSubscribePacket subscribe:
                foreach (var filter in subscribe.TopicFilters)
                {
                    filter.Topic = ToMqttnet(filter.Topic);
                }

                break;
            case MqttUnsubscribePacket unsubscribe:
                for (var i = 0; i < unsubscribe.TopicFilters.Count; i++)
                {
                    unsubscribe.TopicFilters[i] = ToMqttnet(unsubscribe.TopicFilters[i]);
                }

                break;
        }

        return Task.CompletedTask;
    }
}
