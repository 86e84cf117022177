using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using MQTTnet;
using MQTTnet.Protocol;
using MQTTnet.Server;
using OrleansIot.Gateway.Mqtt;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// AWS IoT's HTTPS publish (<c>POST /topics/{topic}?qos=0|1&amp;retain=true|false</c>, the body is the payload): by a
/// device with its client certificate (its policies: <c>iot:Publish</c>, and <c>iot:RetainPublish</c> for a retained
/// message) or a backend with an operator key. The message takes the path of an MQTT publish (telemetry stream and
/// rules, retained store, subscribers on every node); 200 once it is accepted as a PUBACK would be.
/// </summary>
public static class PublishApi
{
    public static IEndpointRouteBuilder MapPublishApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/topics/{**topic}", PublishAsync).WithTags("Data plane").WithName("Publish")
            .WithMetadata(new OptionalBody(typeof(byte[]), "application/octet-stream"))
            .ChangedBy(Grains.Abstractions.ApiKeys.ApiKeyRoles.Operator)
            .WithMetadata(new DeviceAccess(context => string.Equals(context.Request.Query["retain"], "true", StringComparison.OrdinalIgnoreCase)
                ? [("iot:Publish", $"topic/{TopicOf(context)}"), ("iot:RetainPublish", $"topic/{TopicOf(context)}")]
                : [("iot:Publish", $"topic/{TopicOf(context)}")]));
        return endpoints;
    }

    /// <summary>
    /// The topic of a publish request, decoded once from the path as sent: AWS's SDKs and CLI encode the topic as one
    /// path segment (<c>a%2Fb</c>), curl sends it as a path (<c>a/b</c>); both are <c>a/b</c>. (The routed value
    /// cannot say which: the server leaves <c>%2F</c> encoded and decodes the rest.)
    /// </summary>
    internal static string TopicOf(HttpContext context)
    {
        var raw = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget ?? context.Request.Path.Value ?? "";
        var end = raw.IndexOf('?');
        var path = end < 0 ? raw : raw[..end];
        var start = path.IndexOf("/topics/", StringComparison.Ordinal);
        return start < 0 ? "" : Uri.UnescapeDataString(path[(start + "/topics/".Length)..]);
    }

    /// <summary>The body is the payload, any bytes; 200 <c>{}</c> once the message is accepted.</summary>
    private static async Task<Ok<EmptyResponse>> PublishAsync(int? qos, bool? retain, HttpRequest request, Limits limits, PublishInterceptor interceptor)
    {
        var topic = TopicOf(request.HttpContext);
        if (qos is not (null or 0 or 1))
        {
            throw ApiException.Invalid("qos must be 0 or 1.");
        }

        if (string.IsNullOrEmpty(topic) || topic.AsSpan().IndexOfAny('+', '#') >= 0 || limits.TopicProblem(topic) is not null)
        {
            throw ApiException.Invalid($"'{topic}' is not a topic this broker accepts (no wildcards, within the topic limits).");
        }

        var max = limits.Values.MaxPayloadBytes;
        if (request.ContentLength > max)
        {
            throw new ApiException(StatusCodes.Status413PayloadTooLarge, "RequestEntityTooLargeException", $"The payload is larger than {max} bytes.");
        }

        using var buffer = new MemoryStream();
        await request.Body.CopyToAsync(buffer, request.HttpContext.RequestAborted);
        if (buffer.Length > max)
        {
            throw new ApiException(StatusCodes.Status413PayloadTooLarge, "RequestEntityTooLargeException", $"The payload is larger than {max} bytes.");
        }

        var message = new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(buffer.ToArray())
            .WithQualityOfServiceLevel(qos == 1 ? MqttQualityOfServiceLevel.AtLeastOnce : MqttQualityOfServiceLevel.AtMostOnce)
            .WithRetainFlag(retain == true)
            .Build();
        // Authorized already (ApiAccess): the sender carries no access of its own, like a will published for a client.
        var items = new System.Collections.Concurrent.ConcurrentDictionary<object, object>();
        new LiveConnection("", "http", 5, request.HttpContext.Connection.RemoteIpAddress is { } ip ? new System.Net.IPEndPoint(ip, 0) : null) { OnBehalf = true }.AttachTo(items);
        var args = new InterceptingPublishEventArgs(message, "", null, items, request.HttpContext.RequestAborted);
        await interceptor.HandleAsync(args);
        return args.Response.ReasonCode switch
        {
            MqttPubAckReasonCode.Success or MqttPubAckReasonCode.NoMatchingSubscribers => EmptyResponse.Ok,
            MqttPubAckReasonCode.NotAuthorized => throw new ApiException(StatusCodes.Status403Forbidden, "AccessDeniedException", $"Publishing to {topic} is not allowed."),
            _ => throw new ApiException(StatusCodes.Status503ServiceUnavailable, "ServiceUnavailableException", "The message could not be stored; publish it again."),
        };
    }
}
