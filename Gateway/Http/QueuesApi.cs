using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Queues;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Durable named queues (our SQS), fed by the rules' <c>queue</c> action: send
/// (<c>POST /api/queues/{name}/messages</c>, the body as is), receive (<c>POST /api/queues/{name}/receive?maxMessages=10&amp;visibilityTimeout=30&amp;waitTimeSeconds=0</c>,
/// long polling up to 20 s), delete = acknowledge (<c>POST /api/queues/{name}/delete</c> with
/// <c>{"receiptHandles": […]}</c>) and counts (<c>GET /api/queues/{name}</c>). A message not deleted within its
/// visibility timeout is delivered again: at least once.
/// </summary>
public static class QueuesApi
{
    public static IEndpointRouteBuilder MapQueuesApi(this IEndpointRouteBuilder endpoints)
    {
        var queues = endpoints.MapGroup("/api/queues").WithTags("Queues").ChangedBy(ApiKeyRoles.Operator);
        queues.MapPost("/{queueName}/messages", SendAsync).WithName("SendMessage").NotAudited();
        queues.MapPost("/{queueName}/receive", ReceiveAsync).WithName("ReceiveMessage").NotAudited();
        queues.MapPost("/{queueName}/delete", DeleteAsync).WithName("DeleteMessageBatch").NotAudited();
        queues.MapGet("/{queueName}", StatsAsync).WithName("GetQueueAttributes");
        return endpoints;
    }

    private static async Task<IResult> SendAsync(string queueName, HttpRequest request, IGrainFactory grains)
    {
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body);
        if (body.Length > 256 * 1024)
        {
            throw ApiException.Invalid("A message is at most 256 KiB.");
        }

        var ids = await grains.GetGrain<IQueueServiceGrain>(0).Send(queueName, [body.ToArray()]);
        return TypedResults.Ok(new { messageId = ids[0] });
    }

    private static async Task<IResult> ReceiveAsync(string queueName, HttpRequest request, IGrainFactory grains, TimeProvider time)
    {
        var max = QueryValues.WholeNumber(request.Query, "maxMessages", 1, 1, 10);
        var visibility = TimeSpan.FromSeconds(QueryValues.WholeNumber(request.Query, "visibilityTimeout", 30, 0, 43200));
        var wait = TimeSpan.FromSeconds(QueryValues.WholeNumber(request.Query, "waitTimeSeconds", 0, 0, 20));
        var service = grains.GetGrain<IQueueServiceGrain>(0);
        var until = time.GetUtcNow() + wait;
        IReadOnlyList<QueueMessage> messages;
        while ((messages = await service.Receive(queueName, max, visibility)).Count == 0 && time.GetUtcNow() < until)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), time, request.HttpContext.RequestAborted);
        }

        var list = new JsonArray();
        foreach (var m in messages)
        {
            var text = Utf8(m.Body);
            list.Add(new JsonObject
            {
                ["messageId"] = m.MessageId.ToString(),
                ["receiptHandle"] = m.ReceiptHandle,
                ["body"] = text ?? Convert.ToBase64String(m.Body),
                ["bodyEncoding"] = text is null ? "base64" : "utf-8",
                ["sentTimestamp"] = m.SentAt.ToUnixTimeMilliseconds(),
                ["receiveCount"] = m.ReceiveCount,
            });
        }

        return JsonText.Result(new JsonObject { ["messages"] = list });
    }

    private static async Task<IResult> DeleteAsync(string queueName, JsonObject body, IGrainFactory grains)
    {
        if (body["receiptHandles"] is not JsonArray handles || handles.Count is 0 or > 100
            || handles.Any(h => h is not JsonValue v || !v.TryGetValue<string>(out _)))
        {
            throw ApiException.Invalid("receiptHandles must list 1 to 100 receipt handles (strings).");
        }

        var deleted = await grains.GetGrain<IQueueServiceGrain>(0).Delete(queueName, [.. handles.Select(h => h!.GetValue<string>())]);
        return TypedResults.Ok(new { deleted });
    }

    private static async Task<IResult> StatsAsync(string queueName, IGrainFactory grains)
    {
        var stats = await grains.GetGrain<IQueueServiceGrain>(0).Stats(queueName);
        return TypedResults.Ok(new
        {
            queueName,
            approximateNumberOfMessages = stats.Visible,
            approximateNumberOfMessagesNotVisible = stats.InFlight,
        });
    }

    private static string? Utf8(byte[] bytes)
    {
        try
        {
            return new UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes);
        }
        catch (DecoderFallbackException)
        {
            return null;
        }
    }
}
