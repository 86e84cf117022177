using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Gateway.Routing;
using OrleansIot.Gateway.Telemetry;
using OrleansIot.Grains.Abstractions.Shadows;
using OrleansIot.Grains.Abstractions.Telemetry;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// Every PUBLISH from a client passes here before MQTTnet routes it (and sends the PUBACK). MQTTnet awaits this
/// per connection, so it stays short: count, queue for the telemetry stream what a rule selects (for QoS 1/2
/// waiting until the stream has it), route.
/// </summary>
internal sealed partial class PublishInterceptor(
    TelemetryPublisher telemetry,
    ClusterRouter router,
    LocalSubscribers local,
    Retained.RetainedMessages retained,
    Limits limits,
    MqttServer mqtt,
    ShadowTopicHandler shadows,
    ProvisioningTopicHandler provisioning,
    JobsTopicHandler jobs,
    RuleTopics rules,
    NodeIdentity node,
    TimeProvider time,
    GatewayMetrics metrics,
    ILogger<PublishInterceptor> logger)
{
    public Task HandleAsync(InterceptingPublishEventArgs e)
    {
        var meter = LiveConnection.From(e.SessionItems);
        if (meter is null)
        {
            // Injected by the server itself (commands, responses): not device telemetry.
            return Task.CompletedTask;
        }

        var message = e.ApplicationMessage;
        var payload = message.Payload;
        meter.CountIn(payload.Length);
        if (meter.Access is { } access && (!access.MayPublish(message.Topic) || (message.Retain && !access.MayRetain(message.Topic))))
        {
            Deny(e, meter);
            return Task.CompletedTask;
        }

        var throttle = TimeSpan.Zero;
        if (!meter.OnBehalf && ExceedsLimits(e, meter, message, out throttle))
        {
            return Task.CompletedTask;
        }

        if (throttle > TimeSpan.Zero)
        {
            // Over its throughput: MQTTnet handles a connection's packets one at a time, so holding this publish
            // slows that connection alone (AWS delays the excess).
            return HoldThenAcceptAsync(throttle, e, meter);
        }

        return Accept(e, meter);
    }

    /// <summary>
    /// A publish its policies do not allow (<c>iot:Publish</c>, and <c>iot:RetainPublish</c> for a retained one): not
    /// routed; MQTT 5 PUBACK 0x87; MQTT 3.1.1 has no negative PUBACK, so AWS closes the connection, and so do we.
    /// </summary>
    private void Deny(InterceptingPublishEventArgs e, LiveConnection meter)
    {
        metrics.PublishInAuthErrors.Add(1);
        LogDenied(logger, meter.ClientId, e.ApplicationMessage.Topic, meter.Principal);
        e.ProcessPublish = false;
        e.Response.ReasonCode = MqttPubAckReasonCode.NotAuthorized;
        if (meter.ProtocolVersion < 5)
        {
            meter.ServerDisconnectReason = Grains.Abstractions.Things.DisconnectReasons.AuthError;
            e.CloseConnection = true;
        }
    }

    private Task Shadow(InterceptingPublishEventArgs e, LiveConnection meter, ShadowTopic shadow)
    {
        if (!shadow.IsRequest)
        {
            shadows.Refuse(e, meter);
            return Task.CompletedTask;
        }

        return ShadowAsync(e, meter, shadow);
    }

    private async Task ShadowAsync(InterceptingPublishEventArgs e, LiveConnection meter, ShadowTopic shadow)
    {
        var payload = e.ApplicationMessage.Payload;
        var bytes = payload.IsEmpty ? [] : System.Buffers.BuffersExtensions.ToArray(payload);
        if (rules.Wants(e.ApplicationMessage.Topic))
        {
            // A rule reads shadow requests (best effort, as the platform's own topics).
            telemetry.Offer(NewTelemetry(e.ApplicationMessage, bytes, meter.ClientId));
        }

        await shadows.DecideAsync(meter.ClientId, shadow, bytes, e.CancellationToken);
        // Subscribers of the request topic itself get it too, as on AWS.
        await Route(e, meter, bytes);
    }

    private async Task HoldThenAcceptAsync(TimeSpan throttle, InterceptingPublishEventArgs e, LiveConnection meter)
    {
        await Task.Delay(throttle, time, e.CancellationToken);
        await Accept(e, meter);
    }

    private Task Accept(InterceptingPublishEventArgs e, LiveConnection meter)
    {
        metrics.PublishesIn.Add(1);
        var message = e.ApplicationMessage;
        if (ShadowTopicHandler.TryParse(message.Topic, out var shadow))
        {
            // Also after a throughput delay: a held shadow request is still a shadow request.
            return Shadow(e, meter, shadow);
        }

        var payload = message.Payload;
        var bytes = payload.IsEmpty ? [] : System.Buffers.BuffersExtensions.ToArray(payload);
        if (JobsTopicHandler.TryParse(message.Topic, out var jobsTopic))
        {
            if (!jobsTopic.IsRequest)
            {
                shadows.Refuse(e, meter);   // notify and answer topics are the platform's, as the shadow's
                return Task.CompletedTask;
            }

            // Answered to the requester alone and not routed (AWS: jobs answers do not pass through the broker).
            e.ProcessPublish = false;
            return jobs.HandleAsync(meter, message.Topic, jobsTopic, bytes);
        }

        if (ProvisioningTopicHandler.IsRequest(message.Topic))
        {
            // Answered to the requester alone, never routed: other subscribers must not see its private key.
            e.ProcessPublish = false;
            return provisioning.HandleAsync(meter, message.Topic, bytes);
        }

        // Telemetry for the rules: only what an enabled rule selects goes on the stream (the rules are its only
        // reader). '$' topics are the platform's own ($aws/things/.../shadow, $aws/events ...) and match only rules
        // that name them. Basic Ingest ($aws/rules/{rule}/...) is telemetry for one rule only, always.
        var accepted = !IsBasicIngest(message.Topic) && !rules.Wants(message.Topic)
            ? ValueTask.CompletedTask
            : telemetry.PublishAsync(
                NewTelemetry(message, bytes, meter.ClientId),
                e.CancellationToken);
        if (accepted.IsCompletedSuccessfully && !message.Retain)
        {
            return Route(e, meter, bytes);
        }

        return AcceptAsync(accepted, e, meter, bytes);
    }

    private TelemetryMessage NewTelemetry(MqttApplicationMessage message, byte[] bytes, string clientId)
    {
        var now = time.GetUtcNow();
        return new TelemetryMessage(message.Topic, bytes, clientId, (int)message.QualityOfServiceLevel, message.Retain, now, node.Name)
        {
            MessageId = Guid.CreateVersion7(now),
        };
    }

    private async Task AcceptAsync(ValueTask accepted, InterceptingPublishEventArgs e, LiveConnection meter, byte[] bytes)
    {
        var message = e.ApplicationMessage;
        try
        {
            await accepted;
            if (message.Retain && !IsBasicIngest(message.Topic))
            {
                // Stored (durably in PostgreSQL mode) before MQTTnet stores it here and acknowledges it.
                var change = await retained.PublishedHereAsync(message, meter.ClientId, bytes, router.NodeId);
                await router.BroadcastRetainedAsync(change);
                await mqtt.UpdateRetainedMessageAsync(Own(message, bytes));   // this node's store (an empty payload clears)
            }
        }
        catch (Exception ex) when (!e.CancellationToken.IsCancellationRequested)
        {
            // Not accepted: do not route it and do not acknowledge success, so the device sends it again.
            // MQTT 5 gets a failure reason code on the PUBACK; MQTT 3.1.1 has none, so its connection is closed.
            LogNotAccepted(logger, ex, meter.ClientId, message.Topic);
            e.ProcessPublish = false;
            e.Response.ReasonCode = MqttPubAckReasonCode.UnspecifiedError;
            e.Response.ReasonString = "the message could not be stored; publish it again";
            if (meter.ProtocolVersion < 5)
            {
                e.CloseConnection = true;
            }

            return;
        }

        // Only an accepted message is routed, here and to other nodes.
        await Route(e, meter, bytes);
    }

    /// <summary>
    /// Delivers an accepted message to this node's subscribers (<see cref="LocalSubscribers"/>: only the sessions
    /// whose filters match, not every subscribed session as MQTTnet's dispatch would) and to the other nodes, and
    /// tells MQTTnet not to dispatch it again (it still sends the PUBACK). When a subscriber's queue is at its
    /// back-pressure mark, the PUBACK waits until it has room (at most <c>Iot:Mqtt:PublisherWaitLimit</c>): a publisher
    /// slows to the pace of the subscribers it feeds instead of their messages being dropped.
    /// </summary>
    private Task Route(InterceptingPublishEventArgs e, LiveConnection meter, byte[] bytes)
    {
        e.ProcessPublish = false;
        if (IsBasicIngest(e.ApplicationMessage.Topic))
        {
            // AWS Basic Ingest: the message goes to its rule (through the telemetry stream), never to subscribers.
            return Task.CompletedTask;
        }

        var congested = t_congested ??= [];
        congested.Clear();
        router.Forward(e.ApplicationMessage, meter.ClientId, bytes, congested);   // offline sessions first (see there)
        local.Deliver(Own(e.ApplicationMessage, bytes), meter.ClientId, congested);
        if (congested.Count == 0)
        {
            return Task.CompletedTask;
        }

        // Never its own queue: its acknowledgements are read by the loop that would be waiting.
        if (meter.Outbox is { } own)
        {
            congested.RemoveAll(o => o == own);
        }

        if (congested.Count == 0)
        {
            return Task.CompletedTask;
        }

        var waiting = Outbox.WaitForRoomAsync([.. congested], e.CancellationToken);
        congested.Clear();
        return waiting;
    }

    [ThreadStatic]
    private static List<Outbox>? t_congested;

    private static bool IsBasicIngest(string topic) => topic.StartsWith("$aws/rules/", StringComparison.Ordinal);

    /// <summary>The message with a payload it owns (queued messages outlive MQTTnet's receive buffer).</summary>
    private static MqttApplicationMessage Own(MqttApplicationMessage m, byte[] bytes) => new()
    {
        Topic = m.Topic,
        Payload = new System.Buffers.ReadOnlySequence<byte>(bytes),
        QualityOfServiceLevel = m.QualityOfServiceLevel,
        Retain = m.Retain,
        ContentType = m.ContentType,
        ResponseTopic = m.ResponseTopic,
        CorrelationData = m.CorrelationData,
        UserProperties = m.UserProperties,
        MessageExpiryInterval = m.MessageExpiryInterval,
        PayloadFormatIndicator = m.PayloadFormatIndicator,
    };

    /// <summary>
    /// Refuses a publish over the limits, as AWS does: a payload too large ends the connection (MQTT 5 DISCONNECT
    /// 0x95 packet too large, AWS CLIENT_ERROR); a topic too long or too deep is not routed (MQTT 5 PUBACK 0x90
    /// topic name invalid; MQTT 3.1.1 has no negative PUBACK, so its connection is closed).
    /// </summary>
    private bool ExceedsLimits(InterceptingPublishEventArgs e, LiveConnection meter, MqttApplicationMessage message, out TimeSpan throttle)
    {
        throttle = TimeSpan.Zero;
        if (message.Payload.Length > limits.Values.MaxPayloadBytes)
        {
            limits.Exceeded(Limits.Payload, meter.ClientId, $"{message.Payload.Length} bytes on {message.Topic}");
            e.ProcessPublish = false;
            meter.ServerDisconnectReason = Grains.Abstractions.Things.DisconnectReasons.ClientError;
            // Not awaited: this runs inside the connection's own packet loop, which the disconnect stops.
            _ = Task.Run(() => mqtt.DisconnectClientAsync(meter.ClientId, new MqttServerClientDisconnectOptions { ReasonCode = MqttDisconnectReasonCode.PacketTooLarge }));
            return true;
        }

        var now = time.GetUtcNow().UtcTicks;
        if (!limits.TryTakePublish(meter, message.Payload.Length, now, out var delay))
        {
            // AWS discards the excess; MQTT 5 says why (QoS 0 has no answer, MQTT 3.1.1 no negative PUBACK).
            limits.ExceededOncePerSecond(Limits.PublishRate, meter, $"more than {limits.Values.MaxPublishesPerSecond} publishes in a second", now);
            e.ProcessPublish = false;
            e.Response.ReasonCode = MqttPubAckReasonCode.QuotaExceeded;
            return true;
        }

        if (delay > TimeSpan.Zero)
        {
            limits.ExceededOncePerSecond(Limits.Throughput, meter, $"more than {limits.Values.MaxBytesPerSecond} bytes in a second; delayed {delay.TotalMilliseconds:0} ms", now);
            throttle = delay;
        }

        if (limits.TopicProblem(message.Topic) is { } problem)
        {
            limits.Exceeded(problem, meter.ClientId, message.Topic);
            e.ProcessPublish = false;
            e.Response.ReasonCode = MqttPubAckReasonCode.TopicNameInvalid;
            if (meter.ProtocolVersion < 5)
            {
                meter.ServerDisconnectReason = Grains.Abstractions.Things.DisconnectReasons.ClientError;
                e.CloseConnection = true;
            }

            return true;
        }

        return false;
    }

    [LoggerMessage(EventId = 1017, Level = LogLevel.Information, Message = "Publish of {ClientId} to {Topic} denied by the policies of {Principal}")]
    private static partial void LogDenied(ILogger logger, string clientId, string topic, string principal);

    [LoggerMessage(EventId = 1018, Level = LogLevel.Warning, Message = "Publish of {ClientId} to {Topic} was not accepted")]
    private static partial void LogNotAccepted(ILogger logger, Exception exception, string clientId, string topic);
}
