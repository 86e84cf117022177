using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
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
        endpoints.MapGet("/api/telemetry", QueryAsync).WithTags("Analytics").WithName("QueryTelemetry").ChangedBy(ApiKeyRoles.Operator);
        return endpoints;
    }

    private static async Task<IResult> QueryAsync(HttpRequest request, IGrainFactory grains, TimeProvider time)
    {
        var q = request.Query;
        var thingName = q["thingName"].ToString();
        if (thingName.Length == 0)
        {
            throw ApiException.Invalid("thingName is required.");
        }

        var to = QueryValues.Instant(q, "to", time.GetUtcNow());
        var from = QueryValues.Instant(q, "from", to.AddHours(-1));
        if (from >= to)
        {
            throw ApiException.Invalid("from must be before to.");
        }

        var pathText = q["path"].ToString();
        IReadOnlyList<string>? path = pathText.Length == 0 ? null : pathText.Split('.');
        if (path is not null && path.Any(p => p.Length == 0))
        {
            throw ApiException.Invalid($"path '{pathText}' is not a dotted path (a.b.c).");
        }

        var topic = q.ContainsKey("topic") ? q["topic"].ToString() : null;
        var query = grains.GetGrain<ITelemetryQueryGrain>(0);
        var result = new JsonObject
        {
            ["thingName"] = thingName,
            ["path"] = pathText.Length == 0 ? null : pathText,
            ["topic"] = topic,
            ["from"] = JsonText.Instant(from),
            ["to"] = JsonText.Instant(to),
        };
        if (!q.ContainsKey("bucket"))
        {
            var limit = QueryValues.WholeNumber(q, "limit", 100, 1, 1000);
            var points = await query.Points(new TelemetryQuery(thingName, topic, path, from, to, TimeSpan.Zero, TelemetryAggregate.Count, limit));
            result["points"] = new JsonArray([.. points.Select(p => (JsonNode?)new JsonObject
            {
                ["timestamp"] = JsonText.Instant(p.Time),
                ["topic"] = p.Topic,
                ["ruleName"] = p.RuleName,
                ["value"] = JsonNode.Parse(p.Json),
            })]);
            return JsonText.Result(result);
        }

        var bucket = Duration(q["bucket"].ToString());
        var aggregate = q.ContainsKey("agg")
            ? Enum.TryParse<TelemetryAggregate>(q["agg"], ignoreCase: true, out var a) && Enum.IsDefined(a)
                ? a
                : throw ApiException.Invalid("agg must be avg, min, max, sum or count.")
            : TelemetryAggregate.Avg;
        if (path is null && aggregate != TelemetryAggregate.Count)
        {
            throw ApiException.Invalid($"path is required for agg={aggregate.ToString().ToLowerInvariant()} (the number to aggregate, e.g. path=temperature).");
        }

        var buckets = await query.Aggregate(new TelemetryQuery(thingName, topic, path, from, to, bucket, aggregate, 0));
        result["aggregate"] = aggregate.ToString().ToLowerInvariant();
        result["bucket"] = q["bucket"].ToString();
        result["buckets"] = new JsonArray([.. buckets.Select(b => (JsonNode?)new JsonObject
        {
            ["start"] = JsonText.Instant(b.Start),
            ["value"] = b.Value,
            ["count"] = b.Count,
        })]);
        return JsonText.Result(result);
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
