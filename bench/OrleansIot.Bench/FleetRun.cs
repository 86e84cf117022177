using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;

namespace OrleansIot.Bench;

/// <summary>
/// <c>fleet</c>: loads N registered things with attributes and a reported shadow through the HTTP API (skipped with
/// <c>--load false</c> to query a fleet loaded before), then times fleet-index queries one at a time: selective
/// searches (one thing by an attribute, a name prefix, a shadow range within a rack) and whole-fleet aggregations.
/// </summary>
internal static class FleetRun
{
    public const string Usage = """
        fleet --http H --key API_KEY [--host 127.0.0.1] [--things 100000] [--load true] [--prefix fleet] [--queries 200]
              [--concurrency 32] [--label L]
          thing i: attributes serial=SN-i, rack=i%100, model=m(i%7); reported {temp: i%50 + 0.5, fw: "1.(i%4)", on: i%2=0};
          prints p50/p95/p99/max of each query kind over --queries runs (aggregations: a tenth as many)
        """;

    public static async Task<int> RunAsync(string[] args, CancellationToken stop)
    {
        var a = new BenchArgs(args);
        var inv = CultureInfo.InvariantCulture;
        if (!a.Has("http") || !a.Has("key"))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var host = a.Get("host", "127.0.0.1");
        var count = a.Int("things", 100_000);
        var prefix = a.Get("prefix", "fleet");
        var queries = a.Int("queries", 200);
        var label = a.Get("label", host);
        using var http = new HttpClient { BaseAddress = new Uri($"http://{host}:{a.Int("http", 8080)}"), Timeout = TimeSpan.FromMinutes(5) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", a.Get("key", ""));

        if (a.Get("load", "true") == "true")
        {
            var load = Stopwatch.StartNew();
            long done = 0;
            await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = a.Int("concurrency", 32), CancellationToken = stop }, async (i, token) =>
            {
                var name = Name(prefix, i);
                var attributes = new JsonObject { ["serial"] = $"SN-{i}", ["rack"] = (i % 100).ToString(inv), ["model"] = $"m{i % 7}" };
                await Check(await http.PostAsync($"/api/things/{name}", Json(new JsonObject { ["attributePayload"] = new JsonObject { ["attributes"] = attributes } }), token));
                var reported = new JsonObject { ["temp"] = (i % 50) + 0.5, ["fw"] = $"1.{i % 4}", ["on"] = i % 2 == 0 };
                await Check(await http.PostAsync($"/things/{name}/shadow", Json(new JsonObject { ["state"] = new JsonObject { ["reported"] = reported } }), token));
                if (Interlocked.Increment(ref done) % 10_000 == 0)
                {
                    await Console.Error.WriteLineAsync($"{done} things loaded ({done / load.Elapsed.TotalSeconds:0}/s)");
                }
            });
            await Console.Error.WriteLineAsync($"{count} things loaded in {load.Elapsed.TotalSeconds:0.0}s");
        }

        var random = new Random(42);
        await TimeAsync(label, "search: one thing by attribute", queries, () => Search($"attributes.serial:SN-{random.Next(count)}"), http, stop);
        await TimeAsync(label, "search: name prefix (10 things)", queries, () => Search($"thingName:{Name(prefix, random.Next(count / 10) * 10)[..^1]}*"), http, stop);
        await TimeAsync(label, "search: rack and shadow range", queries, () => Search($"attributes.rack:{random.Next(100)} AND shadow.reported.temp:[10 TO 12]"), http, stop);
        await TimeAsync(label, "search: connected things, first page", queries / 10, () => Search("shadow.reported.on:true", 100), http, stop);
        var fleet = $"thingName:{prefix}-*";
        await TimeAsync(label, "statistics: temp over the whole fleet", Math.Max(3, queries / 20), () => ("/api/indices/statistics", new JsonObject { ["queryString"] = fleet, ["aggregationField"] = "shadow.reported.temp" }), http, stop);
        await TimeAsync(label, "statistics: whole fleet, query *", Math.Max(3, queries / 20), () => ("/api/indices/statistics", new JsonObject { ["queryString"] = "*", ["aggregationField"] = "shadow.reported.temp" }), http, stop);
        await TimeAsync(label, "cardinality: model over the fleet", Math.Max(3, queries / 20), () => ("/api/indices/cardinality", new JsonObject { ["queryString"] = fleet, ["aggregationField"] = "attributes.model" }), http, stop);
        await TimeAsync(label, "percentiles: temp over the fleet", Math.Max(3, queries / 20), () => ("/api/indices/percentiles", new JsonObject { ["queryString"] = fleet, ["aggregationField"] = "shadow.reported.temp" }), http, stop);
        return 0;
    }

    private static string Name(string prefix, int i) => $"{prefix}-{i:D6}";

    private static (string Path, JsonObject Body) Search(string query, int maxResults = 500) =>
        ("/api/indices/search", new JsonObject { ["queryString"] = query, ["maxResults"] = maxResults });

    private static async Task TimeAsync(string label, string what, int runs, Func<(string Path, JsonObject Body)> next, HttpClient http, CancellationToken stop)
    {
        var times = new List<double>(runs);
        long results = 0;
        for (var i = 0; i < runs; i++)
        {
            var (path, body) = next();
            var clock = Stopwatch.StartNew();
            var response = await http.PostAsync(path, Json(body), stop);
            var text = await response.Content.ReadAsStringAsync(stop);
            times.Add(clock.Elapsed.TotalMilliseconds);
            await Check(response, text);
            results += JsonNode.Parse(text)!["things"]?.AsArray().Count ?? 0;
        }

        times.Sort();
        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv,
            $"| {label} | {what} | {runs} | {(double)results / runs:0.#} | {BenchArgs.Quantile(times, 0.50):0.0} | {BenchArgs.Quantile(times, 0.95):0.0} | {BenchArgs.Quantile(times, 0.99):0.0} | {times[^1]:0.0} |"));
    }

    private static StringContent Json(JsonNode body) => new(body.ToJsonString(), Encoding.UTF8, "application/json");

    private static async Task Check(HttpResponseMessage response, string? text = null)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{(int)response.StatusCode} {response.RequestMessage?.RequestUri}: {text ?? await response.Content.ReadAsStringAsync()}");
        }
    }
}
