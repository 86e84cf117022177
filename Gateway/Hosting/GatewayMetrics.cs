using System.Diagnostics.Metrics;

namespace OrleansIot.Gateway.Hosting;

/// <summary>The gateway's instruments (meter <c>OrleansIot.Gateway</c>); MQTTnet publishes none of its own.</summary>
public sealed class GatewayMetrics : IDisposable
{
    public const string MeterName = "OrleansIot.Gateway";

    private readonly Meter _meter;

    public GatewayMetrics(IMeterFactory meterFactory)
    {
        ArgumentNullException.ThrowIfNull(meterFactory);
        _meter = meterFactory.Create(MeterName);
        Connects = _meter.CreateCounter<long>("iot.mqtt.connects", description: "MQTT connections accepted");
        ConnectsRefused = _meter.CreateCounter<long>("iot.mqtt.connects.refused", description: "MQTT connections refused");
        Disconnects = _meter.CreateCounter<long>("iot.mqtt.disconnects", description: "MQTT connections ended");
        PublishesIn = _meter.CreateCounter<long>("iot.mqtt.publish.in", description: "PUBLISH packets accepted from clients");
        PublishesOut = _meter.CreateCounter<long>("iot.mqtt.publish.out", description: "Messages routed to subscribers");
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
        SessionMessagesDropped = _meter.CreateCounter<long>("iot.sessions.dropped", description: "Messages of offline persistent sessions dropped (queue full, expired, or unreachable)");
        WillsPublished = _meter.CreateCounter<long>("iot.mqtt.wills", description: "Will messages published");
        AuthFailures = _meter.CreateCounter<long>("iot.auth.failures", description: "Connections refused for their identity or policies (AWS AuthFailure)");
        Denied = _meter.CreateCounter<long>("iot.auth.denied", description: "Publishes, subscriptions and deliveries a policy did not allow");
        DeliveryDropped = _meter.CreateCounter<long>("iot.delivery.dropped", description: "Messages not delivered to a subscriber whose queue was full (Iot:Mqtt:MaxQueuedMessagesPerClient), by QoS");
    }

    public Counter<long> Connects { get; }
    public Counter<long> ConnectsRefused { get; }
    public Counter<long> Disconnects { get; }
    public Counter<long> PublishesIn { get; }
    public Counter<long> PublishesOut { get; }
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
    public Counter<long> WillsPublished { get; }
    public Counter<long> DeliveryDropped { get; }
    public Counter<long> AuthFailures { get; }
    public Counter<long> Denied { get; }

    public void Dispose() => _meter.Dispose();
}
