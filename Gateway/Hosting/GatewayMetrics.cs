using System.Diagnostics.Metrics;

namespace OrleansIot.Gateway.Hosting;

/// <summary>
/// The gateway's instruments (meter <c>OrleansIot.Gateway</c>); MQTTnet publishes none of its own. The broker's carry
/// AWS IoT's CloudWatch names where AWS has one (<c>Connect.Success</c>, <c>PublishIn.Success</c>, …), so dashboards and
/// alarms written for AWS read the same series (Prometheus spells them <c>Connect_Success_total</c>).
/// </summary>
public sealed class GatewayMetrics : IDisposable
{
    public const string MeterName = "OrleansIot.Gateway";

    private readonly Meter _meter;

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        _meter = meterFactory.Create(MeterName);
        Connects = _meter.CreateCounter<long>("Connect.Success", description: "MQTT connections accepted");
        ConnectClientErrors = _meter.CreateCounter<long>("Connect.ClientError", description: "MQTT connections refused for a malformed request (an invalid client id)");
        ConnectServerErrors = _meter.CreateCounter<long>("Connect.ServerError", description: "MQTT connections refused because the node could not reach its session store");
        ConnectsRefused = _meter.CreateCounter<long>("iot.mqtt.connects.refused", description: "MQTT connections refused, for any reason (tag reason_code: the CONNACK reason)");
        Disconnects = _meter.CreateCounter<long>("iot.mqtt.disconnects", description: "MQTT connections ended");
        PublishesIn = _meter.CreateCounter<long>("PublishIn.Success", description: "PUBLISH packets accepted from clients (their policies allow them, within the limits)");
        PublishInAuthErrors = _meter.CreateCounter<long>("PublishIn.AuthError", description: "PUBLISH packets a policy did not allow");
        PublishesOut = _meter.CreateCounter<long>("PublishOut.Success", description: "Messages routed to subscribers");
        PublishOutAuthErrors = _meter.CreateCounter<long>("PublishOut.AuthError", description: "Deliveries to subscribers a policy did not allow (iot:Receive)");
        Subscribes = _meter.CreateCounter<long>("Subscribe.Success", description: "Topic filters subscribed (each filter of a SUBSCRIBE)");
        SubscribeAuthErrors = _meter.CreateCounter<long>("Subscribe.AuthError", description: "Topic filters a policy did not allow (iot:Subscribe)");
        TelemetryMessages = _meter.CreateCounter<long>("iot.telemetry.messages", description: "Messages written to the telemetry stream");
        TelemetryBatches = _meter.CreateCounter<long>("iot.telemetry.batches", description: "Stream events written to the telemetry stream");
        TelemetryDropped = _meter.CreateCounter<long>("iot.telemetry.dropped", description: "QoS 0 messages dropped because the telemetry queue was full or the write failed");
        Forwarded = _meter.CreateCounter<long>("iot.routing.forwarded", description: "Messages forwarded to subscribers on other nodes");
        ForwardDropped = _meter.CreateCounter<long>("iot.routing.forward.dropped", description: "Messages for other nodes dropped (queue full, or a replay to a gone node's session failed)");
        Replayed = _meter.CreateCounter<long>("iot.routing.replayed", description: "Messages replayed to the persistent sessions of a gone node");
        Injected = _meter.CreateCounter<long>("iot.routing.received", description: "Messages received from other nodes for local subscribers");
        SessionsResumed = _meter.CreateCounter<long>("iot.sessions.resumed", description: "Persistent sessions resumed by a connection (session present)");
        SessionsAdopted = _meter.CreateCounter<long>("iot.sessions.adopted", description: "Client ids taken over from a node that died or left");
        SessionMessagesQueued = _meter.CreateCounter<long>("iot.sessions.queued", description: "Messages queued for offline persistent sessions");
        SessionMessagesFollowed = _meter.CreateCounter<long>("iot.sessions.followed", description: "Messages for a session that had moved to another node, sent after it through its grain");
        SessionMessagesDropped = _meter.CreateCounter<long>("iot.sessions.dropped", description: "Messages of offline persistent sessions dropped (queue full, expired, or unreachable)");
        WillsPublished = _meter.CreateCounter<long>("iot.mqtt.wills", description: "Will messages published");
        AuthFailures = _meter.CreateCounter<long>("Connect.AuthError", description: "MQTT connections refused for their identity or policies");
        WatchDropped = _meter.CreateCounter<long>("iot.watch.dropped", description: "Messages a topic watch (GET /api/watch) could not take because its reader was behind; the reader is told how many");
        ConnectThrottled = _meter.CreateCounter<long>("Connect.Throttle", description: "MQTT connections refused because the node's connect rate was exceeded (Iot:Limits:MaxConnectsPerSecond)");
        ConnectClientIdThrottled = _meter.CreateCounter<long>("Connect.ClientIDThrottle", description: "MQTT connections refused because their client id connected too often (Iot:Limits:MaxConnectsPerSecondPerClientId)");
        DeliveryDropped = _meter.CreateCounter<long>("iot.delivery.dropped", description: "Messages not delivered to a subscriber whose queue was full (Iot:Mqtt:MaxQueuedMessagesPerClient), by QoS");
    }

    public Counter<long> Connects { get; }
    public Counter<long> ConnectClientErrors { get; }
    public Counter<long> ConnectServerErrors { get; }
    public Counter<long> ConnectsRefused { get; }
    public Counter<long> Disconnects { get; }
    public Counter<long> PublishesIn { get; }
    public Counter<long> PublishInAuthErrors { get; }
    public Counter<long> PublishesOut { get; }
    public Counter<long> PublishOutAuthErrors { get; }
    public Counter<long> Subscribes { get; }
    public Counter<long> SubscribeAuthErrors { get; }
    public Counter<long> TelemetryMessages { get; }
    public Counter<long> TelemetryBatches { get; }
    public Counter<long> TelemetryDropped { get; }
    public Counter<long> Forwarded { get; }
    public Counter<long> ForwardDropped { get; }
    public Counter<long> Replayed { get; }
    public Counter<long> Injected { get; }
    public Counter<long> SessionsResumed { get; }
    public Counter<long> SessionsAdopted { get; }
    public Counter<long> SessionMessagesQueued { get; }
    public Counter<long> SessionMessagesDropped { get; }
    public Counter<long> SessionMessagesFollowed { get; }
    public Counter<long> WillsPublished { get; }
    public Counter<long> DeliveryDropped { get; }
    public Counter<long> AuthFailures { get; }

    public Counter<long> ConnectThrottled { get; }

    public Counter<long> WatchDropped { get; }

    public Counter<long> ConnectClientIdThrottled { get; }

    /// <summary>This node's meter (a process may host several nodes: tests): what <see cref="Routing.NodeStatsReporter"/> listens to.</summary>
    internal Meter Meter => _meter;

    public void Dispose() => _meter.Dispose();
}
