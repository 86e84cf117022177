using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Gateway.Routing;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.ApiKeys;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// The messages on a topic filter, live, as server-sent events: what AWS's console calls the MQTT test client, and
/// what the console's device page draws its telemetry chart from. Not AWS's API. The watch sees what subscribers see,
/// from every node (its filter is announced as a route while it lasts), and is not a subscriber: no QoS promise, no
/// session, no retained messages; a watcher that reads slower than the topic is written is told how many it missed.
/// </summary>
public static partial class TopicWatchApi
{
    private static readonly TimeSpan KeepAlive = TimeSpan.FromSeconds(25);

    public static IEndpointRouteBuilder MapTopicWatchApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/watch", WatchAsync).WithTags("Console").WithName("WatchTopic").ChangedBy(ApiKeyRoles.Operator)
            .Produces<string>(StatusCodes.Status200OK, "text/event-stream");
        return endpoints;
    }

    /// <summary>One message of a watch: its payload as text when it is UTF-8, else in base64.</summary>
    public sealed record WatchedMessageView(string Topic, int Qos, bool Retain, string ClientId, long Timestamp, string? Payload, string? PayloadBase64);

    /// <summary>
    /// <c>GET /api/watch?filter=dt/+/telemetry</c>: an event <c>watching</c> once every node routes the filter here,
    /// then <c>message</c> per message, <c>dropped</c> with the count the watcher missed (its queue,
    /// <c>Iot:Routing:TopicWatchQueue</c>, was full), and a comment every 25 s. A node holds at most
    /// <c>Iot:Routing:MaxTopicWatches</c> (429 beyond).
    /// </summary>
    private static async Task WatchAsync(string? filter, HttpContext http, TopicWatches watches, ClusterRouter router, IOptions<RoutingOptions> options, ILoggerFactory loggers)
    {
        if (string.IsNullOrEmpty(filter) || !TopicFilter.IsValidFilter(filter) || TopicFilter.IsShared(filter) || Encoding.UTF8.GetByteCount(filter) > 256)
        {
            throw ApiException.Invalid($"filter '{filter}' is not a topic filter (levels split by '/', '+' for one level, '#' last; at most 256 bytes; no $share).");
        }

        var watch = watches.Start(filter, options.Value.TopicWatchQueue, options.Value.MaxTopicWatches)
            ?? throw new ApiException(429, "ThrottlingException", $"This node already serves {options.Value.MaxTopicWatches} topic watches (Iot:Routing:MaxTopicWatches).");
        var cancel = http.RequestAborted;
        try
        {
            await router.SubscribedAsync(watch.Id, filter, qos: 0);
            var response = http.Response;
            response.ContentType = "text/event-stream";
            response.Headers.CacheControl = "no-cache";
            await response.WriteAsync($"event: watching\ndata: {JsonSerializer.Serialize(new { filter, node = router.NodeId })}\n\n", cancel);
            await response.Body.FlushAsync(cancel);
            var text = new StringBuilder();
            while (!cancel.IsCancellationRequested)
            {
                using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancel);
                wait.CancelAfter(KeepAlive);
                bool more;
                try
                {
                    more = await watch.Messages.WaitToReadAsync(wait.Token);
                }
                catch (OperationCanceledException) when (!cancel.IsCancellationRequested)
                {
                    await response.WriteAsync(": still watching\n\n", cancel);
                    await response.Body.FlushAsync(cancel);
                    continue;
                }

                if (!more)
                {
                    break;
                }

                text.Clear();
                for (var n = 0; n < 256 && watch.Messages.TryRead(out var message); n++)
                {
                    text.Append("event: message\ndata: ").Append(JsonSerializer.Serialize(View(message), Web)).Append("\n\n");
                }

                if (watch.TakeDropped() is var dropped and > 0)
                {
                    text.Append("event: dropped\ndata: {\"count\":").Append(dropped).Append("}\n\n");
                }

                await response.WriteAsync(text.ToString(), cancel);
                await response.Body.FlushAsync(cancel);
            }
        }
        catch (OperationCanceledException) when (cancel.IsCancellationRequested)
        {
            // The watcher went away.
        }
        finally
        {
            watches.End(watch);
            await router.SessionEndedAsync(watch.Id);
            if (watch.Missed is var missed and > 0)
            {
                // Counted as they happen (iot.watch.dropped) and told to the reader; logged once per watch.
                var logger = loggers.CreateLogger(typeof(TopicWatchApi));
                LogWatchMissed(logger, missed, filter);
            }
        }
    }

    private static WatchedMessageView View(WatchedMessage message)
    {
        string? text = null;
        try
        {
            text = StrictUtf8.GetString(message.Payload);
        }
        catch (DecoderFallbackException)
        {
            // binary: sent in base64
        }

        return new WatchedMessageView(message.Topic, message.Qos, message.Retain, message.SenderClientId, message.Time.ToUnixTimeMilliseconds(),
            text, text is null ? Convert.ToBase64String(message.Payload) : null);
    }

    [LoggerMessage(EventId = 1072, Level = LogLevel.Information, Message = "A topic watch of {Filter} ended having dropped {Count} messages its reader was too slow for")]
    private static partial void LogWatchMissed(ILogger logger, long count, string filter);

    private static readonly JsonSerializerOptions Web = new(JsonSerializerDefaults.Web);

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);
}
