using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Grains.Rules;

internal static partial class RuleActions
{
    /// <summary>
    /// AWS's HTTP action: <c>{"http": {"url": "https://…/${topic(2)}", "headers": [{"key": "…", "value": "…"}],
    /// "batchConfig": {"maxBatchSize": 10, "maxBatchOpenMs": 20}, "timeoutMs": 3000, "maxRetries": 3}}</c>: POSTs the
    /// output (a batch: a JSON array of outputs) as application/json, sent in the background by
    /// <see cref="HttpActionDispatcher"/>. The URL is a substitution template; header values are literal.
    /// Unlike AWS, plain http is allowed (endpoints on your own network) and no confirmation step exists.
    /// </summary>
    private static CompiledAction Http(JsonObject body)
    {
        var urlText = Text(body, "http", "url");
        if (!urlText.StartsWith("http://", StringComparison.OrdinalIgnoreCase) && !urlText.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
        {
            throw ApiException.Invalid("http.url must start with http:// or https://.");
        }

        var url = Template(body, "http", "url");
        var headers = new List<KeyValuePair<string, string>>();
        if (body["headers"] is { } headersNode)
        {
            if (headersNode is not JsonArray list || list.Count > 100)
            {
                throw ApiException.Invalid("http.headers must be an array of at most 100 {\"key\", \"value\"} objects.");
            }

            foreach (var header in list)
            {
                var pair = header as JsonObject ?? throw ApiException.Invalid("http.headers: each header is a {\"key\", \"value\"} object.");
                var key = Text(pair, "http.headers", "key");
                if (!key.All(c => c > ' ' && c < 127 && c != ':'))
                {
                    throw ApiException.Invalid($"http.headers: '{key}' is not a header name.");
                }

                headers.Add(new(key, Text(pair, "http.headers", "value")));
            }
        }

        var timeout = Number(body, "http", "timeoutMs", 3000, 100, 60_000);
        var retries = Number(body, "http", "maxRetries", 3, 0, 10);
        var (batchSize, batchOpen) = (1, 0);
        if (body["batchConfig"] is { } batchNode)
        {
            var batch = batchNode as JsonObject ?? throw ApiException.Invalid("http.batchConfig must be an object.");
            batchSize = Number(batch, "http.batchConfig", "maxBatchSize", 10, 2, 10);
            batchOpen = Number(batch, "http.batchConfig", "maxBatchOpenMs", 20, 5, 200);
        }

        var settings = new HttpActionSettings(TimeSpan.FromMilliseconds(timeout), retries, batchSize, TimeSpan.FromMilliseconds(batchOpen));
        return new CompiledAction("HttpAction", c => url.Render(c.Message), (c, onFailure) =>
        {
            var rendered = url.Render(c.Message);
            if (!Uri.TryCreate(rendered, UriKind.Absolute, out var target) || target.Scheme is not ("http" or "https"))
            {
                throw new InvalidOperationException($"http: '{rendered}' is not an http(s) URL.");
            }

            var dispatcher = c.Services.Services.GetService<HttpActionDispatcher>()
                ?? throw new InvalidOperationException("http: this host does not send http actions.");
            dispatcher.Enqueue(new HttpDelivery(target, headers, c.Output, settings, c.RuleName, onFailure));
            return Task.CompletedTask;
        }, Deferred: true);
    }

    private static int Number(JsonObject body, string action, string name, int fallback, int min, int max)
    {
        if (body[name] is null)
        {
            return fallback;
        }

        return body[name] is JsonValue node && node.TryGetValue<int>(out var value) && value >= min && value <= max
            ? value
            : throw ApiException.Invalid($"{action}.{name} must be a whole number from {min} to {max}.");
    }
}
