using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Gateway.Mqtt;
using OrleansIot.Gateway.Routing;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Sessions;

/// <summary>
/// Publishes a will as if its client had published it: through the publish interceptor (telemetry stream,
/// retained store, other nodes) and MQTTnet (this node's subscribers).
/// </summary>
internal sealed partial class WillPublisher(MqttServer mqtt, GatewayMetrics metrics, ILogger<WillPublisher> logger)
{
    public async Task PublishAsync(string clientId, WillMessage will)
    {
        if (!mqtt.IsStarted)
        {
            LogNotStarted(logger, clientId);
            return;
        }

        var items = new ConcurrentDictionary<object, object>();
        new LiveConnection(clientId, "will", 5, null) { OnBehalf = true }.AttachTo(items);
        var message = ForwardedMessages.ToMqtt(will.Message, will.Retain);
        try
        {
            await mqtt.InjectApplicationMessage(new InjectedMqttApplicationMessage(message) { SenderClientId = clientId, CustomSessionItems = items });
            metrics.WillsPublished.Add(1);
            LogPublished(logger, clientId, message.Topic);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFailed(logger, ex, clientId, message.Topic);
        }
    }

    [LoggerMessage(EventId = 1058, Level = LogLevel.Information, Message = "Published the will of {ClientId} to {Topic}")]
    private static partial void LogPublished(ILogger logger, string clientId, string topic);

    [LoggerMessage(EventId = 1059, Level = LogLevel.Warning, Message = "Could not publish the will of {ClientId} to {Topic}")]
    private static partial void LogFailed(ILogger logger, Exception exception, string clientId, string topic);

    [LoggerMessage(EventId = 1060, Level = LogLevel.Warning, Message = "The will of {ClientId} is not published: the MQTT server is not running")]
    private static partial void LogNotStarted(ILogger logger, string clientId);
}
