using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Gateway.Retained;
using OrleansIot.Grains.Abstractions.ApiKeys;

using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Gateway.Http;

/// <summary>AWS <c>ListRetainedMessages</c> and <c>GetRetainedMessage</c>, answered from this node's replica.</summary>
public static class RetainedApi
{
    public static IEndpointRouteBuilder MapRetainedApi(this IEndpointRouteBuilder endpoints)
    {
        var group = endpoints.MapGroup("/retainedMessage").WithTags("Retained messages").ChangedBy(ApiKeyRoles.Operator);
        group.MapGet("/", List).WithName("ListRetainedMessages");
        group.MapGet("/{**topic}", Get).WithName("GetRetainedMessage");
        return endpoints;
    }

    /// <summary>An item of <c>ListRetainedMessages</c>.</summary>
    public sealed record RetainedTopic(string Topic, long PayloadSize, int Qos, long LastModifiedTime);

    /// <summary>The <c>ListRetainedMessages</c> response.</summary>
    public sealed record RetainedTopicsPage(IReadOnlyList<RetainedTopic> RetainedTopics, string? NextToken);

    /// <summary>The <c>GetRetainedMessage</c> response; payload and user properties base64 as in AWS.</summary>
    public sealed record RetainedMessage(string Topic, string Payload, int Qos, long LastModifiedTime, string? UserProperties);

    private static Ok<RetainedTopicsPage> List(int? maxResults, string? nextToken, RetainedMessages retainedMessages)
    {
        if (maxResults is < 1 or > 200)
        {
            throw ApiException.Invalid("maxResults must be between 1 and 200.");
        }

        string? after = null;
        if (nextToken is not null)
        {
            try
            {
                after = Encoding.UTF8.GetString(Convert.FromBase64String(nextToken));
            }
            catch (FormatException)
            {
                throw ApiException.Invalid("nextToken is not valid.");
            }
        }

        var take = maxResults ?? 200;
        var retained = retainedMessages.Current()
            .Where(c => after is null || string.CompareOrdinal(c.Topic, after) > 0)
            .Take(take + 1)
            .ToList();
        var page = retained.Take(take).Select(c => new RetainedTopic(c.Topic, c.Message!.Payload.Length, c.Message.Qos, c.ModifiedAt.ToUnixTimeMilliseconds())).ToList();
        var next = retained.Count > take ? Convert.ToBase64String(Encoding.UTF8.GetBytes(page[^1].Topic)) : null;
        return TypedResults.Ok(new RetainedTopicsPage(page, next));
    }

    private static Ok<RetainedMessage> Get(string topic, RetainedMessages retainedMessages)
    {
        var change = retainedMessages.Get(Uri.UnescapeDataString(topic));
        if (change?.Message is not { } message)
        {
            throw ApiException.NotFound($"No retained message for topic {topic}.");
        }

        // AWS: a base64-encoded JSON array of {"name": "value"} objects.
        string? userProperties = null;
        if (message.UserProperties is { Count: > 0 } properties)
        {
            var json = JsonSerializer.SerializeToUtf8Bytes(properties.Select(p => new Dictionary<string, string> { [p.Key] = Encoding.UTF8.GetString(p.Value) }));
            userProperties = Convert.ToBase64String(json);
        }

        return TypedResults.Ok(new RetainedMessage(change.Topic, Convert.ToBase64String(message.Payload), message.Qos, change.ModifiedAt.ToUnixTimeMilliseconds(), userProperties));
    }
}
