using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>Decides whether a CONNECT is accepted.</summary>
internal sealed partial class ConnectionValidator(
    Security.DeviceAuthenticator authenticator,
    LifecycleEvents lifecycle,
    Limits limits,
    ConnectThrottle throttle,
    Sessions.SessionHost sessions,
    GatewayMetrics metrics,
    ILogger<ConnectionValidator> logger)
{
    public async Task HandleAsync(ValidatingConnectionEventArgs e)
    {
        if (throttle.Check(ClientIds.Of(e)) is not ConnectThrottle.Verdict.Allowed and var throttled)
        {
            // First, before any work: a reconnect storm costs the node as little as possible per refusal.
            (throttled == ConnectThrottle.Verdict.NodeRate ? metrics.ConnectThrottled : metrics.ConnectClientIdThrottled).Add(1);
            Refuse(e, e.ProtocolVersion == MqttProtocolVersion.V500 ? MqttConnectReasonCode.ConnectionRateExceeded : MqttConnectReasonCode.ServerUnavailable,
                throttled == ConnectThrottle.Verdict.NodeRate ? "the node's connect rate (Iot:Limits:MaxConnectsPerSecond)" : "the client id's connect rate (Iot:Limits:MaxConnectsPerSecondPerClientId)");
            await lifecycle.ConnectFailedAsync(ClientIds.Of(e), "unknown", Security.DeviceAuthenticator.IpOf(e.RemoteEndPoint), "THROTTLED");
        }
        else if (string.IsNullOrEmpty(e.ClientId) && !AssignClientId(e))
        {
            // MQTT 3.1.1 with CleanSession 0 and no client id: the spec requires "identifier rejected" (2)
            // (MQTT 5 would be 0x85, but MQTT 5 always gets an assigned id).
            Refuse(e, MqttConnectReasonCode.ClientIdentifierNotValid, "empty client id with a persistent session");
        }
        else if (limits.ClientIdTooLong(ClientIds.Of(e)))
        {
            limits.Exceeded(Limits.ClientId, ClientIds.Of(e), $"more than {limits.Values.MaxClientIdBytes} bytes");
            Refuse(e, MqttConnectReasonCode.ClientIdentifierNotValid, "client id too long");
        }
        else
        {
            // The will is taken out of MQTTnet's hands: the cluster publishes it (with its delay, and from another
            // node when this one dies).
            var packet = MqttnetInternals.ConnectPacketOf(e);
            var will = ConnectPackets.TakeWill(packet, ClientIds.Of(e));
            var outcome = await authenticator.AuthenticateAsync(e, will);
            if (outcome.Access is null)
            {
                // MQTT 5: CONNACK 0x87; MQTT 3.1.1: CONNACK 5 (not authorized), then the connection is closed.
                Refuse(e, outcome.BadCredentials ? MqttConnectReasonCode.BadUserNameOrPassword : MqttConnectReasonCode.NotAuthorized, outcome.Why!);
                if (outcome.TellClient)
                {
                    e.ReasonString = outcome.Why;
                }

                metrics.AuthFailures.Add(1);
                if (outcome.ConnectFailed)
                {
                    await lifecycle.ConnectFailedAsync(ClientIds.Of(e), outcome.Principal, Security.DeviceAuthenticator.IpOf(e.RemoteEndPoint));
                }

                return;
            }

            // AWS keeps keep-alive within 30..1200 s (0: 1200); MQTTnet's keep-alive monitor reads the CONNECT,
            // and MQTT 5 clients learn the granted value from CONNACK's Server Keep Alive.
            var granted = packet.KeepAlivePeriod == 0
                ? limits.Values.MaxKeepAliveSeconds
                : Math.Clamp(packet.KeepAlivePeriod, limits.Values.MinKeepAliveSeconds, limits.Values.MaxKeepAliveSeconds);
            packet.KeepAlivePeriod = (ushort)granted;

            if (!await sessions.AttachAsync(e, will))
            {
                authenticator.Forget(e);
                Refuse(e, MqttConnectReasonCode.ServerUnavailable, "the session store could not be reached; try again");
                return;
            }

            if (e.CleanSession == false && sessions.ConnectStateOf(ClientIds.Of(e)) is not { Attached.SessionPresent: true })
            {
                // The cluster has no session to resume (none, expired, or of the other MQTT version): MQTTnet must not
                // resume its own either, the session of a connection here it is taking over or has not yet dropped,
                // or that session's subscriptions would come back and CONNACK would say "session present".
                packet.CleanSession = true;
            }

            SubscriptionTracker.MarkCleanStart(e);
        }
    }

    /// <summary>
    /// An empty client id gets a server-assigned one: MQTT 5 (returned in CONNACK's Assigned Client Identifier) and
    /// MQTT 3.1.1 with CleanSession 1 (spec 3.1.3-6: the server assigns one; the client is not told). Tools such as
    /// mosquitto_pub send an empty id by default. False when the spec says to refuse.
    /// </summary>
    private bool AssignClientId(ValidatingConnectionEventArgs e)
    {
        var assigned = $"auto-{Guid.NewGuid():N}";
        if (e.ProtocolVersion == MqttProtocolVersion.V500)
        {
            e.AssignedClientIdentifier = assigned;   // MQTTnet puts it into the session and the CONNACK
            LogAssigned(logger, assigned, e.RemoteEndPoint);
            return true;
        }

        if (e.CleanSession != true)
        {
            return false;
        }

        // MQTTnet only assigns ids for MQTT 5; for 3.1.1 the id is set on the CONNECT packet it validates.
        MqttnetInternals.ConnectPacketOf(e).ClientId = assigned;
        LogAssigned(logger, assigned, e.RemoteEndPoint);
        return true;
    }

    [LoggerMessage(EventId = 1010, Level = LogLevel.Information, Message = "Assigned client id {ClientId} to the connection from {Endpoint}, which sent none")]
    private static partial void LogAssigned(ILogger logger, string clientId, System.Net.EndPoint? endpoint);

    private void Refuse(ValidatingConnectionEventArgs e, MqttConnectReasonCode code, string why)
    {
        e.ReasonCode = code;
        metrics.ConnectsRefused.Add(1, new KeyValuePair<string, object?>("reason_code", code.ToString()));
        if (code == MqttConnectReasonCode.ClientIdentifierNotValid)
        {
            metrics.ConnectClientErrors.Add(1);
        }
        else if (code == MqttConnectReasonCode.ServerUnavailable)
        {
            metrics.ConnectServerErrors.Add(1);
        }

        var clientId = ClientIds.Of(e);
        LogRefused(logger, clientId, e.RemoteEndPoint, code, why);
    }

    [LoggerMessage(EventId = 1011, Level = LogLevel.Information, Message = "Refused MQTT connection of '{ClientId}' from {Endpoint}: {ReasonCode} ({Why})")]
    private static partial void LogRefused(ILogger logger, string clientId, System.Net.EndPoint? endpoint, MqttConnectReasonCode reasonCode, string why);
}
