using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using MQTTnet.Server;
using OrleansIot.Gateway.Routing;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// AWS IoT lifecycle events: <c>$aws/events/presence/connected|disconnected/{clientId}</c> and
/// <c>$aws/events/subscriptions/subscribed|unsubscribed/{clientId}</c>, with AWS's payload fields, published to
/// subscribers on every node. Client ids containing '#' or '+' get none (they cannot be part of a topic name), as on AWS.
/// </summary>
internal sealed partial class LifecycleEvents(MqttServer mqtt, BrokerPublisher broker, TimeProvider time, ILogger<LifecycleEvents> logger)
{
    public const string SenderClientId = "$aws/events";

    public Task ConnectedAsync(LiveConnection meter, string? principal, string? ipAddress) =>
        PublishAsync("presence/connected", meter.ClientId, writer =>
        {
            writer.WriteString("eventType", "connected");
            writer.WriteString("sessionIdentifier", meter.SessionId);
            writer.WriteString("principalIdentifier", principal ?? "anonymous");
            if (ipAddress is not null)
            {
                writer.WriteString("ipAddress", ipAddress);
            }

            writer.WriteNumber("versionNumber", meter.VersionNumber);
        });

    public Task DisconnectedAsync(LiveConnection meter, string? principal, bool clientInitiated, string reason) =>
        PublishAsync("presence/disconnected", meter.ClientId, writer =>
        {
            writer.WriteString("eventType", "disconnected");
            writer.WriteString("sessionIdentifier", meter.SessionId);
            writer.WriteString("principalIdentifier", principal ?? "anonymous");
            writer.WriteBoolean("clientInitiatedDisconnect", clientInitiated);
            writer.WriteString("disconnectReason", reason);
            writer.WriteNumber("versionNumber", meter.VersionNumber);
        });

    /// <summary>AWS <c>connect_failed</c>: not authorized to connect, or to publish the will.</summary>
    public Task ConnectFailedAsync(string clientId, string principal, string? ipAddress, string reason = "AUTHORIZATION_FAILED") =>
        PublishAsync("presence/connect_failed", clientId, writer =>
        {
            writer.WriteString("eventType", "connect_failed");
            writer.WriteString("connectFailureReason", reason);
            writer.WriteString("principalIdentifier", principal);
            writer.WriteString("sessionIdentifier", Guid.NewGuid().ToString());
            if (ipAddress is not null)
            {
                writer.WriteString("ipAddress", ipAddress);
            }
        });

    public Task SubscriptionChangedAsync(LiveConnection meter, string? principal, bool subscribed, IReadOnlyList<string> topics) =>
        PublishAsync(subscribed ? "subscriptions/subscribed" : "subscriptions/unsubscribed", meter.ClientId, writer =>
        {
            writer.WriteString("eventType", subscribed ? "subscribed" : "unsubscribed");
            writer.WriteString("sessionIdentifier", meter.SessionId);
            writer.WriteString("principalIdentifier", principal ?? "anonymous");
            writer.WriteStartArray("topics");
            foreach (var topic in topics)
            {
                writer.WriteStringValue(topic);
            }

            writer.WriteEndArray();
        });

    private Task PublishAsync(string kind, string clientId, Action<Utf8JsonWriter> body)
    {
        if (clientId.AsSpan().IndexOfAny('#', '+') >= 0 || !mqtt.IsStarted)
        {
            return Task.CompletedTask;
        }

        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer))
        {
            writer.WriteStartObject();
            writer.WriteString("clientId", clientId);
            writer.WriteNumber("timestamp", time.GetUtcNow().ToUnixTimeMilliseconds());
            body(writer);
            writer.WriteEndObject();
        }

        try
        {
            broker.Publish(string.Create(CultureInfo.InvariantCulture, $"$aws/events/{kind}/{clientId}"), buffer.WrittenSpan.ToArray(), 1, SenderClientId);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogPublishFailed(logger, ex, kind, clientId);
        }

        return Task.CompletedTask;
    }

    [LoggerMessage(EventId = 1012, Level = LogLevel.Warning, Message = "Could not publish the {Kind} lifecycle event of {ClientId}")]
    private static partial void LogPublishFailed(ILogger logger, Exception exception, string kind, string clientId);
}
