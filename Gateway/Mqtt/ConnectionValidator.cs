using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet.Protocol;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>Decides whether a CONNECT is accepted.</summary>
internal sealed partial class ConnectionValidator(IOptions<AuthOptions> auth, GatewayMetrics metrics, ILogger<ConnectionValidator> logger)
{
    private readonly bool _allowAnonymous = auth.Value.AllowAnonymous;

    public Task HandleAsync(ValidatingConnectionEventArgs e)
    {
        if (string.IsNullOrEmpty(e.ClientId))
        {
            // A device's thing is named by its client id: without one there is nothing to attach it to.
            // MQTT 5 "Client Identifier not valid" (0x85); MQTTnet sends 3.1.1's "identifier rejected" (2).
            Refuse(e, MqttConnectReasonCode.ClientIdentifierNotValid, "empty client id");
        }
        else if (!_allowAnonymous)
        {
            // Certificate and credential authentication are not built yet: with anonymous access off, nobody gets in.
            Refuse(e, MqttConnectReasonCode.NotAuthorized, "anonymous access is off (Iot:Auth:AllowAnonymous)");
        }
        else
        {
            SubscriptionTracker.MarkCleanStart(e);
        }

        return Task.CompletedTask;
    }

    private void Refuse(ValidatingConnectionEventArgs e, MqttConnectReasonCode code, string why)
    {
        e.ReasonCode = code;
        metrics.ConnectsRefused.Add(1);
        LogRefused(logger, e.ClientId, e.RemoteEndPoint, code, why);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Refused MQTT connection of '{ClientId}' from {Endpoint}: {ReasonCode} ({Why})")]
    private static partial void LogRefused(ILogger logger, string clientId, System.Net.EndPoint? endpoint, MqttConnectReasonCode reasonCode, string why);
}
