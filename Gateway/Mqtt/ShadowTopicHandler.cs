using System.Text;
using Microsoft.Extensions.Logging;
using MQTTnet.Protocol;
using MQTTnet.Server;
using OrleansIot.Gateway.Routing;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Shadows;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// AWS shadow topics on the MQTT listeners (called by <see cref="PublishInterceptor"/>): a request
/// (<c>…/get|update|delete</c>) goes to its thing grain, which answers on the response topics through the broker, so
/// every subscriber on every node gets the answer. The interceptor sends the PUBACK after the grain decided: a device
/// that got it knows its request was decided, and one connection's requests are decided in order. Response topics
/// are the platform's: a client may not publish to them (AWS allows only Subscribe there).
/// </summary>
internal sealed partial class ShadowTopicHandler(IGrainFactory grains, BrokerPublisher broker, Limits limits, TimeProvider time, ILogger<ShadowTopicHandler> logger)
{
    /// <summary>A shadow topic (request or response); other topics, including other <c>$aws/things/…</c> ones, are not.</summary>
    public static bool TryParse(string topic, out ShadowTopic shadow)
    {
        shadow = default;
        return topic.StartsWith(ShadowTopics.ThingsPrefix, StringComparison.Ordinal) && ShadowTopics.TryParse(topic, out shadow);
    }

    /// <summary>A client published to a response topic: not routed; MQTT 5 PUBACK 0x87, MQTT 3.1.1 disconnected (AWS).</summary>
    public void Refuse(InterceptingPublishEventArgs e, LiveConnection meter)
    {
        limits.Exceeded(Limits.ReservedTopic, meter.ClientId, e.ApplicationMessage.Topic);
        e.ProcessPublish = false;
        e.Response.ReasonCode = MqttPubAckReasonCode.NotAuthorized;
        if (meter.ProtocolVersion < 5)
        {
            meter.ServerDisconnectReason = DisconnectReasons.ClientError;
            e.CloseConnection = true;
        }
    }

    /// <summary>Has the thing grain decide the request (it publishes the answer); a grain that cannot answer gets a 500 on <c>/rejected</c>.</summary>
    public async Task DecideAsync(string clientId, ShadowTopic shadow, byte[] payload, CancellationToken cancellationToken)
    {
        var request = new ShadowRequest(shadow.ShadowName, payload, ShadowChannel.Mqtt);
        var thing = grains.Reference<IThingGrain>(shadow.ThingName);
        try
        {
            _ = shadow.Operation switch
            {
                ShadowOperation.Get => await thing.GetShadow(request),
                ShadowOperation.Update => await thing.UpdateShadow(request),
                _ => await thing.DeleteShadow(request),
            };
        }
        catch (Exception ex) when (!cancellationToken.IsCancellationRequested)
        {
            // The grain could not answer (its node died mid-call, a timeout): say so on /rejected, as AWS would.
            LogShadowFailed(logger, ex, clientId, shadow.ThingName);
            broker.Publish(
                ShadowTopics.Response(shadow.ThingName, shadow.ShadowName, shadow.Operation, "rejected"),
                Encoding.UTF8.GetBytes($$"""{"code":500,"message":"Internal service failure","timestamp":{{time.GetUtcNow().ToUnixTimeSeconds()}}}"""),
                1);
        }
    }

    [LoggerMessage(EventId = 1019, Level = LogLevel.Warning, Message = "Shadow request of {ClientId} for thing {ThingName} failed")]
    private static partial void LogShadowFailed(ILogger logger, Exception exception, string clientId, string thingName);
}
