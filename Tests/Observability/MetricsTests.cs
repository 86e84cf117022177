using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Observability;

/// <summary>
/// <c>/metrics</c> as Prometheus scrapes it (parsed), <c>/healthz</c> and <c>/readyz</c> as an orchestrator probes
/// them, and the Grafana dashboard in deploy/ reading only series the node exports (counted traffic:
/// <see cref="MetricsTrafficTests"/>).
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class MetricsTests(NodeFixture node)
{
    private async Task<PrometheusText> ScrapeAsync()
    {
        var response = await node.Http.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.StartsWith("text/plain", response.Content.Headers.ContentType?.MediaType, StringComparison.Ordinal);
        return new PrometheusText(await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Metrics_NeedAnApiKey_AnyRoleReadsThem()
    {
        using var anonymous = new HttpClient { BaseAddress = node.Http.BaseAddress };
        var refused = await anonymous.GetAsync("/metrics");
        Assert.Equal(HttpStatusCode.Unauthorized, refused.StatusCode);
        Assert.Equal("application/problem+json", refused.Content.Headers.ContentType?.MediaType);

        var created = await node.Http.PostAsJsonAsync("/api/apikeys", new { name = Ids.NewId("scraper"), role = "reader" });
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        var key = (await created.Content.ReadFromJsonAsync<JsonObject>())!["key"]!.GetValue<string>();
        using var scraper = new HttpClient { BaseAddress = node.Http.BaseAddress };
        scraper.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", key);
        var scrape = new PrometheusText(await scraper.GetStringAsync("/metrics"));
        Assert.True(scrape.Has("dotnet_process_cpu_count"));
    }

    [Fact]
    public async Task Healthz_SaysAlive_AndReadyz_ListsItsChecks_WithoutAKey()
    {
        using var probe = new HttpClient { BaseAddress = node.Http.BaseAddress };
        var alive = await probe.GetFromJsonAsync<JsonObject>("/healthz");
        Assert.Equal("alive", alive!["status"]!.GetValue<string>());

        var ready = await probe.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        var body = (await ready.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("ready", body["status"]!.GetValue<string>());
        Assert.Equal("Healthy", body["checks"]!["cluster"]!["status"]!.GetValue<string>());
        Assert.Equal("Healthy", body["checks"]!["mqtt"]!["status"]!.GetValue<string>());
        Assert.Null(body["checks"]!["storage"]);   // the embedded default has no storage to reach
    }

    [Fact]
    public async Task TheGrafanaDashboard_ReadsOnlySeriesTheNodeExports()
    {
        var path = Path.Combine(NodeClients.Folder, "..", "..", "deploy", "grafana", "orleansiot.json");
        var dashboard = JsonNode.Parse(await File.ReadAllTextAsync(path))!;
        var expressions = dashboard["panels"]!.AsArray().SelectMany(p => p!["targets"]!.AsArray()).Select(t => t!["expr"]!.GetValue<string>()).ToList();
        Assert.True(expressions.Count >= 8, $"{expressions.Count} panel queries");

        // Traffic first, so every counter the dashboard reads has been created.
        var id = Ids.NewId("grafana");
        using var client = await node.ConnectAsync(id);
        await client.SubscribeAsync($"dt/{id}/+");
        await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"dt/{id}/x").WithPayload("{}").Build());
        await node.Http.PostAsync($"/things/{id}/shadow", JsonContent.Create(new { state = new { reported = new { on = true } } }));
        var scrape = await Eventually.Get(ScrapeAsync, s => s.Has("PublishOut_Success_total"), "the delivery to be counted");

        // A series not seen yet (no auth error, no drop in this traffic) must be one of our instruments, in the
        // exporter's spelling: dots to underscores, the unit, then _total for counters and _bucket for histograms.
        var declared = DeclaredSeries();
        var series = new System.Text.RegularExpressions.Regex(@"([A-Za-z_][A-Za-z0-9_]*)\s*[\[{]");
        foreach (var expression in expressions)
        {
            var names = series.Matches(expression).Select(m => m.Groups[1].Value).ToList();
            Assert.NotEmpty(names);
            foreach (var name in names)
            {
                Assert.True(scrape.Has(name) || declared.Contains(name), $"the dashboard reads {name} ({expression}), which the node does not export");
            }
        }
    }

    private static HashSet<string> DeclaredSeries()
    {
        // Instruments held in static fields exist once their class is initialised (a rule that ran, a job that moved).
        foreach (var type in new[] { typeof(OrleansIot.Grains.Things.ThingGrain), typeof(OrleansIot.Gateway.Hosting.GatewayMetrics), typeof(OrleansIot.Silo.Hosting.IotSiloHost) }
                     .SelectMany(t => t.Assembly.GetTypes())
                     .Where(t => t.GetFields(System.Reflection.BindingFlags.Static | System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Public)
                         .Any(f => f.FieldType == typeof(System.Diagnostics.Metrics.Meter))))
        {
            System.Runtime.CompilerServices.RuntimeHelpers.RunClassConstructor(type.TypeHandle);
        }

        var names = new HashSet<string>(StringComparer.Ordinal);
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, _) =>
        {
            if (!instrument.Meter.Name.StartsWith("OrleansIot", StringComparison.Ordinal))
            {
                return;
            }

            var name = instrument.Name.Replace('.', '_') + (instrument.Unit == "ms" ? "_milliseconds" : "");
            var kind = instrument.GetType().Name;
            if (kind.StartsWith("Counter", StringComparison.Ordinal))
            {
                names.Add(name + "_total");
            }
            else if (kind.StartsWith("Histogram", StringComparison.Ordinal))
            {
                names.UnionWith([name + "_bucket", name + "_sum", name + "_count"]);
            }
            else
            {
                names.Add(name);
            }
        };
        listener.Start();
        return names;
    }
}
