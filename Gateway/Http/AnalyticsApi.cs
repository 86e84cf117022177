using System.Globalization;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Analytics;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Serving layer: the analytics sink (what the rules' <c>timeseries</c> action stored) under <c>/api/telemetry</c>. <c>GET /api/telemetry?thingName=…&amp;path=a.b&amp;from=…&amp;to=…&amp;bucket=1m&amp;agg=avg</c>
/// answers time buckets (avg, min, max, sum or count of the numbers at the path); without <c>bucket</c>, the newest
/// points (<c>limit</c>, default 100, at most 1000). <c>from</c>/<c>to</c> are ISO 8601 or Unix milliseconds (default:
/// the last hour); <c>bucket</c> is a number with ms, s, m, h or d.
/// </summary>
public static class AnalyticsApi
{
    public static IEndpointRouteBuilder MapAnalyticsApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/telemetry", QueryAsync).WithTags("Analytics").WithName("QueryTelemetry").ChangedBy(ApiKeyRoles.Operator);
        return endpoints;
    }

    public sealed record QueryTelemetryRequest(string? ThingName, string? From, string? To, string? Path, string? Topic, int? Limit, string? Bucket, string? Agg);

    public sealed record TelemetryPointView(string Timestamp, string Topic, string? RuleName, JsonNode? Value);

    public sealed record TelemetryBucketView(string Start, double? Value, long Count);

    /// <summary>Points (newest first) without <c>bucket</c>; with it, the aggregate per bucket.</summary>
    public sealed record QueryTelemetryResponse(
        string ThingName,
        string? Path,
        string? Topic,
        string From,
        string To,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<TelemetryPointView>? Points,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Aggregate,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? Bucket,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] IReadOnlyList<TelemetryBucketView>? Buckets);

    private static async Task<Ok<QueryTelemetryResponse>> QueryAsync([AsParameters] QueryTelemetryRequest request, IGrainFactory grains, TimeProvider time)
    {
        var thingName = request.ThingName is { Length: > 0 } name ? name : throw ApiException.Invalid("thingName is required.");
        var to = QueryValues.Instant(request.To, "to", time.GetUtcNow());
        var from = QueryValues.Instant(request.From, "from", to.AddHours(-1));
        if (from >= to)
        {
            throw ApiException.Invalid("from must be before to.");
        }

        var pathText = request.Path ?? "";
        IReadOnlyList<string>? path = pathText.Length == 0 ? null : pathText.Split('.');
        if (path is not null && path.Any(p => p.Length == 0))
        {
            throw ApiException.Invalid($"path '{pathText}' is not a dotted path (a.b.c).");
        }

        var topic = request.Topic;
        var query = grains.GetGrain<ITelemetryQueryGrain>(0);
        var answer = new QueryTelemetryResponse(thingName, QueryValues.Optional(pathText), topic, JsonText.Instant(from), JsonText.Instant(to), null, null, null, null);
        if (request.Bucket is null)
        {
            var limit = QueryValues.Range(request.Limit, "limit", 100, 1, 1000);
            var points = await query.Points(new TelemetryQuery(thingName, topic, path, from, to, TimeSpan.Zero, TelemetryAggregate.Count, limit));
            return TypedResults.Ok(answer with
            {
                Points = [.. points.Select(p => new TelemetryPointView(JsonText.Instant(p.Time), p.Topic, p.RuleName, JsonNode.Parse(p.Json)))],
            });
        }

        var bucket = Duration(request.Bucket);
        var aggregate = request.Agg is { } agg
            ? Enum.TryParse<TelemetryAggregate>(agg, ignoreCase: true, out var a) && Enum.IsDefined(a)
                ? a
                : throw ApiException.Invalid("agg must be avg, min, max, sum or count.")
            : TelemetryAggregate.Avg;
        if (path is null && aggregate != TelemetryAggregate.Count)
        {
            throw ApiException.Invalid($"path is required for agg={aggregate.ToString().ToLowerInvariant()} (the number to aggregate, e.g. path=temperature).");
        }

        var buckets = await query.Aggregate(new TelemetryQuery(thingName, topic, path, from, to, bucket, aggregate, 0));
        return TypedResults.Ok(answer with
        {
            Aggregate = aggregate.ToString().ToLowerInvariant(),
            Bucket = request.Bucket,
            Buckets = [.. buckets.Select(b => new TelemetryBucketView(JsonText.Instant(b.Start), b.Value, b.Count))],
        });
    }

    private static TimeSpan Duration(string text)
    {
        var unitAt = 0;
        while (unitAt < text.Length && char.IsAsciiDigit(text[unitAt]))
        {
            unitAt++;
        }

        if (unitAt is 0 or > 9 || !long.TryParse(text.AsSpan(0, unitAt), CultureInfo.InvariantCulture, out var n) || n == 0)
        {
            throw ApiException.Invalid($"bucket '{text}' must be a positive number with a unit: ms, s, m, h or d (e.g. 1m).");
        }

        return text[unitAt..] switch
        {
            "ms" => TimeSpan.FromMilliseconds(n),
            "s" => TimeSpan.FromSeconds(n),
            "m" => TimeSpan.FromMinutes(n),
            "h" => TimeSpan.FromHours(n),
            "d" => TimeSpan.FromDays(n),
            _ => throw ApiException.Invalid($"bucket '{text}' must be a positive number with a unit: ms, s, m, h or d (e.g. 1m)."),
        };
    }
}
