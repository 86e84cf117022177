using System.Text;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Gateway.Routing;
using OrleansIot.Grains.Abstractions.Provisioning;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// AWS fleet provisioning's MQTT API (called by <see cref="PublishInterceptor"/> after the publish was authorized):
/// <c>$aws/certificates/create/json</c>, <c>$aws/certificates/create-from-csr/json</c> and
/// <c>$aws/provisioning-templates/{templateName}/provision/json</c>. The answer goes on the request topic's
/// <c>/accepted</c> or <c>/rejected</c> to the requesting connection alone (it may carry a private key), and only
/// when it subscribed there, as AWS requires. Only the <c>json</c> payload format is served.
/// </summary>
internal sealed partial class ProvisioningTopicHandler(IGrainFactory grains, LocalSubscribers local, Security.AuditTrail audit, ILogger<ProvisioningTopicHandler> logger)
{
    private const string CreateTopic = "$aws/certificates/create/json";
    private const string CreateFromCsrTopic = "$aws/certificates/create-from-csr/json";
    private const string TemplatesPrefix = "$aws/provisioning-templates/";
    private const string ProvisionSuffix = "/provision/json";

    /// <summary>Whether the topic is a fleet provisioning request.</summary>
    public static bool IsRequest(string topic) =>
        topic is CreateTopic or CreateFromCsrTopic
        || (topic.StartsWith(TemplatesPrefix, StringComparison.Ordinal) && topic.EndsWith(ProvisionSuffix, StringComparison.Ordinal)
            && topic.Length > TemplatesPrefix.Length + ProvisionSuffix.Length && topic.IndexOf('/', TemplatesPrefix.Length) == topic.Length - ProvisionSuffix.Length);

    /// <summary>Answers the request; the PUBACK follows the answer.</summary>
    public async Task HandleAsync(LiveConnection meter, string topic, byte[] payload)
    {
        var clientId = meter.ClientId;
        var service = grains.GetGrain<IFleetProvisioningGrain>(0);
        ProvisioningAnswer answer;
        try
        {
            answer = topic switch
            {
                CreateTopic => await service.CreateKeysAndCertificate(),
                CreateFromCsrTopic => await service.CreateCertificateFromCsr(payload),
                _ => await service.RegisterThing(topic[TemplatesPrefix.Length..^ProvisionSuffix.Length], payload),
            };
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogFailed(logger, ex, clientId, topic);
            answer = new ProvisioningAnswer(false, """{"statusCode":500,"errorCode":"InternalFailure","errorMessage":"Internal service failure"}""");
        }

        // Certificates and things made by a device's request: audited with the (claim) certificate that asked.
        var operation = topic switch { CreateTopic => "CreateKeysAndCertificate", CreateFromCsrTopic => "CreateCertificateFromCsr", _ => "RegisterThing" };
        var target = topic.StartsWith(TemplatesPrefix, StringComparison.Ordinal) ? $"templateName={topic[TemplatesPrefix.Length..^ProvisionSuffix.Length]},via=MQTT" : "via=MQTT";
        audit.Record(meter.Principal, operation, target, Security.DeviceAuthenticator.IpOf(meter.RemoteEndPoint), answer.Accepted ? 200 : StatusOf(answer.Document));

        var message = new MqttApplicationMessageBuilder()
            .WithTopic(topic + (answer.Accepted ? "/accepted" : "/rejected"))
            .WithPayload(Encoding.UTF8.GetBytes(answer.Document))
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build();
        if (!local.DeliverTo(clientId, message))
        {
            LogNotSubscribed(logger, clientId, message.Topic);
        }
    }

    private static int StatusOf(string rejected)
    {
        using var document = System.Text.Json.JsonDocument.Parse(rejected);
        return document.RootElement.TryGetProperty("statusCode", out var status) && status.TryGetInt32(out var code) ? code : 400;
    }

    [LoggerMessage(EventId = 1015, Level = LogLevel.Warning, Message = "Fleet provisioning request of {ClientId} on {Topic} failed")]
    private static partial void LogFailed(ILogger logger, Exception exception, string clientId, string topic);

    [LoggerMessage(EventId = 1016, Level = LogLevel.Information, Message = "The fleet provisioning answer for {ClientId} was not delivered: it is not subscribed to {Topic}")]
    private static partial void LogNotSubscribed(ILogger logger, string clientId, string topic);
}
