using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
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
        var queues = endpoints.MapGroup("/queues").WithTags("Queues").ChangedBy(ApiKeyRoles.Operator);
        queues.MapPost("/{queueName}/messages", SendAsync).WithName("SendMessage").NotAudited().WithMetadata(new OptionalBody(typeof(byte[]), "application/octet-stream", Required: true));
        queues.MapPost("/{queueName}/receive", ReceiveAsync).WithName("ReceiveMessage").NotAudited();
        queues.MapPost("/{queueName}/delete", DeleteAsync).WithName("DeleteMessageBatch").NotAudited();
        queues.MapGet("/{queueName}", StatsAsync).WithName("GetQueueAttributes");
        return endpoints;
    }

    public sealed record ReceiveRequest(string QueueName, int? MaxMessages, int? VisibilityTimeout, int? WaitTimeSeconds);

    public sealed record DeleteMessageBatchBody(IReadOnlyList<string>? ReceiptHandles);

    public sealed record SendMessageResponse(Guid MessageId);

    /// <summary>A received message: its body as text when it is UTF-8, base64 otherwise (<c>bodyEncoding</c>).</summary>
    public sealed record ReceivedMessage(string MessageId, string ReceiptHandle, string Body, string BodyEncoding, long SentTimestamp, int ReceiveCount);

    public sealed record ReceiveMessageResponse(IReadOnlyList<ReceivedMessage> Messages);

    public sealed record DeleteMessageBatchResponse(int Deleted);

    public sealed record QueueAttributesResponse(string QueueName, long ApproximateNumberOfMessages, long ApproximateNumberOfMessagesNotVisible);

    /// <summary>The body is the message, any bytes (at most 256 KiB).</summary>
    private static async Task<Ok<SendMessageResponse>> SendAsync(string queueName, HttpRequest request, IGrainFactory grains)
    {
        using var body = new MemoryStream();
        await request.Body.CopyToAsync(body);
        if (body.Length > 256 * 1024)
        {
            throw ApiException.Invalid("A message is at most 256 KiB.");
        }

        var ids = await grains.GetGrain<IQueueServiceGrain>(0).Send(queueName, [body.ToArray()]);
        return TypedResults.Ok(new SendMessageResponse(ids[0]));
    }

    private static async Task<Ok<ReceiveMessageResponse>> ReceiveAsync([AsParameters] ReceiveRequest request, IGrainFactory grains, TimeProvider time, CancellationToken cancellationToken)
    {
        var max = QueryValues.Range(request.MaxMessages, "maxMessages", 1, 1, 10);
        var visibility = TimeSpan.FromSeconds(QueryValues.Range(request.VisibilityTimeout, "visibilityTimeout", 30, 0, 43200));
        var wait = TimeSpan.FromSeconds(QueryValues.Range(request.WaitTimeSeconds, "waitTimeSeconds", 0, 0, 20));
        var service = grains.GetGrain<IQueueServiceGrain>(0);
        var until = time.GetUtcNow() + wait;
        IReadOnlyList<QueueMessage> messages;
        while ((messages = await service.Receive(request.QueueName, max, visibility)).Count == 0 && time.GetUtcNow() < until)
        {
            await Task.Delay(TimeSpan.FromMilliseconds(100), time, cancellationToken);
        }

        return TypedResults.Ok(new ReceiveMessageResponse([.. messages.Select(m => Utf8(m.Body) is { } text
            ? new ReceivedMessage(m.MessageId.ToString(), m.ReceiptHandle, text, "utf-8", m.SentAt.ToUnixTimeMilliseconds(), m.ReceiveCount)
            : new ReceivedMessage(m.MessageId.ToString(), m.ReceiptHandle, Convert.ToBase64String(m.Body), "base64", m.SentAt.ToUnixTimeMilliseconds(), m.ReceiveCount))]));
    }

    private static async Task<Ok<DeleteMessageBatchResponse>> DeleteAsync(string queueName, DeleteMessageBatchBody body, IGrainFactory grains)
    {
        if (body.ReceiptHandles is not { Count: > 0 and <= 100 } handles || handles.Any(h => h is null))
        {
            throw ApiException.Invalid("receiptHandles must list 1 to 100 receipt handles (strings).");
        }

        var deleted = await grains.GetGrain<IQueueServiceGrain>(0).Delete(queueName, [.. handles]);
        return TypedResults.Ok(new DeleteMessageBatchResponse(deleted));
    }

    private static async Task<Ok<QueueAttributesResponse>> StatsAsync(string queueName, IGrainFactory grains)
    {
        var stats = await grains.GetGrain<IQueueServiceGrain>(0).Stats(queueName);
        return TypedResults.Ok(new QueueAttributesResponse(queueName, stats.Visible, stats.InFlight));
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
