using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;

namespace OrleansIot.Tests.Rules;

/// <summary>The event-driven actions on one node (embedded): timeseries and the telemetry API, queue, http, fanout, postgres' refusals, get_thing_shadow.</summary>
[Collection(NodeCollection.Name)]
public sealed class RuleActionsTests(NodeFixture node)
{
    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    private static string Name(string prefix) => prefix + "_" + Guid.NewGuid().ToString("N")[..10];

    internal static async Task CreateRuleAsync(HttpClient http, string name, string sql, JsonNode[] actions, JsonNode? errorAction = null)
    {
        var rule = new JsonObject { ["sql"] = sql, ["actions"] = new JsonArray(actions), ["errorAction"] = errorAction };
        var response = await http.PostAsync($"/api/rules/{name}", Body(rule.ToJsonString()));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    internal static JsonObject Action(string type, JsonObject body) => new() { [type] = body };

    /// <summary>Receives (and acknowledges) until <paramref name="count"/> messages came from the queue.</summary>
    internal static async Task<List<JsonNode>> DrainQueueAsync(HttpClient http, string queue, int count, string what)
    {
        var bodies = new List<JsonNode>();
        await Eventually.True(async () =>
        {
            var received = JsonNode.Parse(await (await http.PostAsync($"/api/queues/{queue}/receive?maxMessages=10", null)).Content.ReadAsStringAsync())!;
            var handles = new JsonArray();
            foreach (var message in received["messages"]!.AsArray())
            {
                bodies.Add(JsonNode.Parse((string)message!["body"]!)!);
                handles.Add((string)message["receiptHandle"]!);
            }

            if (handles.Count > 0)
            {
                await http.PostAsync($"/api/queues/{queue}/delete", Body(new JsonObject { ["receiptHandles"] = handles }.ToJsonString()));
            }

            return bodies.Count >= count;
        }, what);
        return bodies;
    }

    [Fact]
    public async Task Timeseries_StoresTheOutputs_AndTheTelemetryApiAnswersBucketsAndPoints()
    {
        var (rule, root) = (Name("ts"), Ids.NewId("ts"));
        await CreateRuleAsync(node.Http, rule, $"SELECT temperature, topic(2) AS device FROM '{root}/+/telemetry' WHERE temperature > 0",
            [Action("timeseries", new JsonObject { ["thingName"] = "${topic(2)}" })]);
        var device = await node.ConnectAsync(Ids.NewId("dev"));
        var thing = Ids.NewId("thing");

        foreach (var t in new[] { 10, -5, 20, 30, 40 })
        {
            await device.PublishStringAsync($"{root}/{thing}/telemetry", $"{{\"temperature\":{t}}}", MqttQualityOfServiceLevel.AtLeastOnce);
        }

        var points = await Eventually.Get(
            async () => JsonNode.Parse(await node.Http.GetStringAsync($"/api/telemetry?thingName={thing}&path=temperature&limit=10"))!["points"]!.AsArray(),
            p => p.Count == 4, "four stored points (the cold reading filtered out)");
        Assert.Equal([40, 30, 20, 10], points.Select(p => (int)p!["value"]!));            // newest first
        Assert.All(points, p => Assert.Equal(rule, (string)p!["ruleName"]!));

        var avg = JsonNode.Parse(await node.Http.GetStringAsync($"/api/telemetry?thingName={thing}&path=temperature&bucket=1d&agg=avg"))!;
        var bucket = Assert.Single(avg["buckets"]!.AsArray())!;
        Assert.Equal(25.0, (double)bucket["value"]!);
        Assert.Equal(4, (int)bucket["count"]!);
        var max = JsonNode.Parse(await node.Http.GetStringAsync($"/api/telemetry?thingName={thing}&path=temperature&bucket=1d&agg=max"))!;
        Assert.Equal(40.0, (double)max["buckets"]![0]!["value"]!);
        var whole = JsonNode.Parse(await node.Http.GetStringAsync($"/api/telemetry?thingName={thing}&limit=1"))!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse($"{{\"temperature\":40,\"device\":\"{thing}\"}}"), whole["points"]![0]!["value"]));
        var elsewhere = JsonNode.Parse(await node.Http.GetStringAsync($"/api/telemetry?thingName={thing}&path=temperature&from=0&to=1000"))!;
        Assert.Empty(elsewhere["points"]!.AsArray());
    }

    [Fact]
    public async Task Queue_ConsumersReceiveAndDelete_AndWhatIsNotDeletedComesBack()
    {
        var (rule, root, queue) = (Name("q"), Ids.NewId("q"), Name("orders"));
        await CreateRuleAsync(node.Http, rule, $"SELECT id FROM '{root}/#'", [Action("queue", new JsonObject { ["queueName"] = queue })]);
        var device = await node.ConnectAsync(Ids.NewId("dev"));
        for (var i = 1; i <= 3; i++)
        {
            await device.PublishStringAsync($"{root}/o", $"{{\"id\":{i}}}", MqttQualityOfServiceLevel.AtLeastOnce);
        }

        var first = JsonNode.Parse(await (await node.Http.PostAsync($"/api/queues/{queue}/receive?maxMessages=10&visibilityTimeout=3&waitTimeSeconds=10", null)).Content.ReadAsStringAsync())!;
        var messages = first["messages"]!.AsArray();
        if (messages.Count < 3)
        {
            // Long polling returned the first arrivals; the rest follow.
            await Eventually.True(async () => JsonNode.Parse(await node.Http.GetStringAsync($"/api/queues/{queue}"))!["approximateNumberOfMessages"]!.GetValue<long>() + messages.Count >= 3, "all three queued");
            var more = JsonNode.Parse(await (await node.Http.PostAsync($"/api/queues/{queue}/receive?maxMessages=10&visibilityTimeout=3", null)).Content.ReadAsStringAsync())!;
            foreach (var m in more["messages"]!.AsArray().ToList())
            {
                messages.Add(m!.DeepClone());
            }
        }

        Assert.Equal([1, 2, 3], messages.Select(m => (int)JsonNode.Parse((string)m!["body"]!)!["id"]!));   // in order
        Assert.All(messages, m => Assert.Equal(1, (int)m!["receiveCount"]!));
        var ack = new JsonArray((string)messages[0]!["receiptHandle"]!, (string)messages[2]!["receiptHandle"]!);
        var deleted = JsonNode.Parse(await (await node.Http.PostAsync($"/api/queues/{queue}/delete", Body(new JsonObject { ["receiptHandles"] = ack }.ToJsonString()))).Content.ReadAsStringAsync())!;
        Assert.Equal(2, (int)deleted["deleted"]!);

        // Message 2 was not acknowledged: after its visibility timeout it is delivered again, with a new receipt.
        var again = await Eventually.Get(
            async () => JsonNode.Parse(await (await node.Http.PostAsync($"/api/queues/{queue}/receive?maxMessages=10", null)).Content.ReadAsStringAsync())!["messages"]!.AsArray(),
            m => m.Count > 0, "the unacknowledged message again");
        var redelivered = Assert.Single(again)!;
        Assert.Equal(2, (int)JsonNode.Parse((string)redelivered["body"]!)!["id"]!);
        Assert.Equal(2, (int)redelivered["receiveCount"]!);
        var stale = JsonNode.Parse(await (await node.Http.PostAsync($"/api/queues/{queue}/delete", Body(new JsonObject { ["receiptHandles"] = new JsonArray((string)messages[1]!["receiptHandle"]!) }.ToJsonString()))).Content.ReadAsStringAsync())!;
        Assert.Equal(0, (int)stale["deleted"]!);   // the old receipt no longer deletes it

        var badName = await node.Http.PostAsync("/api/queues/bad.name/receive", null);
        Assert.Equal(HttpStatusCode.BadRequest, badName.StatusCode);
    }

    [Fact]
    public async Task Http_PostsEachOutputWithItsHeaders_AndBatchesWhenAsked()
    {
        await using var hook = await WebhookServer.StartAsync();
        var (rule, batched, root) = (Name("h"), Name("hb"), Ids.NewId("h"));
        await CreateRuleAsync(node.Http, rule, $"SELECT n FROM '{root}/single'", [Action("http", new JsonObject
        {
            ["url"] = hook.Url("/single/${topic(1)}"),
            ["headers"] = new JsonArray(new JsonObject { ["key"] = "x-api-key", ["value"] = "secret-1" }),
        })]);
        await CreateRuleAsync(node.Http, batched, $"SELECT n FROM '{root}/batch'", [Action("http", new JsonObject
        {
            ["url"] = hook.Url("/batch"),
            ["batchConfig"] = new JsonObject { ["maxBatchSize"] = 10, ["maxBatchOpenMs"] = 200 },
        })]);
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        await device.PublishStringAsync($"{root}/single", "{\"n\":1}", MqttQualityOfServiceLevel.AtLeastOnce);
        var tasks = Enumerable.Range(0, 5).Select(i => device.PublishStringAsync($"{root}/batch", $"{{\"n\":{i}}}", MqttQualityOfServiceLevel.AtMostOnce));
        await Task.WhenAll(tasks);

        await Eventually.True(() => Task.FromResult(hook.Requests.Any(r => r.Path == $"/single/{root}")), "the webhook call");
        var single = hook.Requests.Single(r => r.Path == $"/single/{root}");
        Assert.Equal("{\"n\":1}", single.Body);
        Assert.Equal("secret-1", single.Headers["x-api-key"]);
        Assert.StartsWith("application/json", single.Headers["Content-Type"], StringComparison.Ordinal);
        var batches = await Eventually.Get(
            () => Task.FromResult(hook.Requests.Where(r => r.Path == "/batch").ToList()),
            b => b.Sum(r => JsonNode.Parse(r.Body)!.AsArray().Count) >= 5, "all five outputs in batches");
        var outputs = batches.SelectMany(r => JsonNode.Parse(r.Body)!.AsArray()).Select(o => (int)o!["n"]!).ToList();
        Assert.True(batches.Count < outputs.Count, $"{batches.Count} requests for {outputs.Count} outputs: not batched");
        Assert.Equal([0, 1, 2, 3, 4], outputs.Distinct());   // in order; a retried batch (at least once) may repeat some
    }

    [Fact]
    public async Task Http_AFailingEndpointIsRetried_ThenTheErrorActionGetsTheFailure()
    {
        await using var hook = await WebhookServer.StartAsync();
        hook.Behaviour = _ => (503, TimeSpan.Zero);
        var (rule, root, errors) = (Name("hf"), Ids.NewId("hf"), Name("errors"));
        await CreateRuleAsync(node.Http, rule, $"SELECT * FROM '{root}'",
            [Action("http", new JsonObject { ["url"] = hook.Url("/fail"), ["maxRetries"] = 2 })],
            Action("queue", new JsonObject { ["queueName"] = errors }));
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        await device.PublishStringAsync(root, "{\"x\":1}", MqttQualityOfServiceLevel.AtLeastOnce);

        var error = Assert.Single(await DrainQueueAsync(node.Http, errors, 1, "the error document"));
        Assert.Equal(3, hook.Requests.Count);                  // the first try and two retries, then given up
        var failure = error["failures"]![0]!;
        Assert.Equal("HttpAction", (string)failure["failedAction"]!);
        Assert.Equal(hook.Url("/fail"), (string)failure["failedResource"]!);
        Assert.Contains("503", (string)failure["errorMessage"]!, StringComparison.Ordinal);
        Assert.Equal(rule, (string)error["ruleName"]!);
    }

    [Fact]
    public async Task Http_AHangingEndpointTimesOut_OtherRulesKeepFlowing_AndItsCircuitOpens()
    {
        await using var hook = await WebhookServer.StartAsync();
        hook.Behaviour = _ => (200, TimeSpan.FromSeconds(30));
        var (slow, fast, root, errors) = (Name("hs"), Name("hq"), Ids.NewId("hs"), Name("errors"));
        await CreateRuleAsync(node.Http, slow, $"SELECT * FROM '{root}/+'",
            [Action("http", new JsonObject { ["url"] = hook.Url("/hang"), ["timeoutMs"] = 200, ["maxRetries"] = 0 })],
            Action("queue", new JsonObject { ["queueName"] = errors }));
        await CreateRuleAsync(node.Http, fast, $"SELECT * FROM '{root}/+'",
            [Action("republish", new JsonObject { ["topic"] = $"fast/{root}", ["qos"] = 1 })]);
        var (app, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"fast/{root}", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        // Ten messages, one partition (one device): the other rule's outputs do not wait for the endpoint.
        for (var i = 0; i < 10; i++)
        {
            await device.PublishStringAsync($"{root}/m", $"{{\"i\":{i}}}", MqttQualityOfServiceLevel.AtLeastOnce);
        }

        var outputs = await inbox.WaitAsync($"fast/{root}", 10, "the other rule's outputs", TimeSpan.FromSeconds(5));
        Assert.Equal(10, outputs.Count);

        // Every one of the ten fails (timeouts, then the open circuit) and reaches the error action.
        var docs = await DrainQueueAsync(node.Http, errors, 10, "ten error documents");
        var messages = docs.Select(d => (string)d["failures"]![0]!["errorMessage"]!).ToList();
        Assert.Contains(messages, m => m.Contains("did not answer within 200 ms", StringComparison.Ordinal));
        Assert.Contains(messages, m => m.Contains("circuit open", StringComparison.Ordinal));
        Assert.True(hook.Requests.Count <= 5 + 4, $"{hook.Requests.Count} requests reached the endpoint after its circuit opened");
    }

    [Fact]
    public async Task Fanout_ReachesEveryTarget()
    {
        var (rule, root, queue) = (Name("f"), Ids.NewId("f"), Name("fan"));
        await CreateRuleAsync(node.Http, rule, $"SELECT v FROM '{root}'", [Action("fanout", new JsonObject
        {
            ["actions"] = new JsonArray(
                Action("republish", new JsonObject { ["topic"] = $"fan/{root}", ["qos"] = 1 }),
                Action("queue", new JsonObject { ["queueName"] = queue })),
        })]);
        var (app, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"fan/{root}", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        await device.PublishStringAsync(root, "{\"v\":7}", MqttQualityOfServiceLevel.AtLeastOnce);

        Assert.Equal(["{\"v\":7}"], await inbox.WaitAsync($"fan/{root}", 1, "the republished output"));
        Assert.Equal(7, (int)(await DrainQueueAsync(node.Http, queue, 1, "the queued output"))[0]["v"]!);
    }

    [Fact]
    public async Task GetThingShadow_ReadsTheThingsShadowInTheRule()
    {
        var (rule, root, thing) = (Name("gs"), Ids.NewId("gs"), Ids.NewId("thing"));
        var update = await node.Http.PostAsync($"/things/{thing}/shadow", Body("{\"state\":{\"reported\":{\"mode\":\"eco\"}}}"));
        Assert.True(update.IsSuccessStatusCode, await update.Content.ReadAsStringAsync());
        await CreateRuleAsync(node.Http, rule,
            $"SELECT temperature, get_thing_shadow(topic(2), 'arn:aws:iam::1:role/r').state.reported.mode AS mode, isUndefined(get_thing_shadow('nobody-{root}', 'arn')) AS none FROM '{root}/+/t'",
            [Action("republish", new JsonObject { ["topic"] = $"out/{root}", ["qos"] = 1 })]);
        var (app, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"out/{root}", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        await device.PublishStringAsync($"{root}/{thing}/t", "{\"temperature\":5}", MqttQualityOfServiceLevel.AtLeastOnce);

        var output = JsonNode.Parse((await inbox.WaitAsync($"out/{root}", 1, "the output"))[0])!;
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("{\"temperature\":5,\"mode\":\"eco\",\"none\":true}"), output), output.ToJsonString());
    }

    [Theory]
    [InlineData("""{"postgres":{"table":"readings; DROP TABLE x"}}""", "postgres.table")]
    [InlineData("""{"postgres":{"table":"readings","columns":{"a\"b":"${x}"}}}""", "must be a plain identifier")]
    [InlineData("""{"postgres":{"table":"a.b.c"}}""", "postgres.table")]
    [InlineData("""{"http":{"url":"ftp://x/y"}}""", "http.url must start with")]
    [InlineData("""{"http":{"url":"http://x/","timeoutMs":0}}""", "http.timeoutMs")]
    [InlineData("""{"http":{"url":"http://x/","headers":[{"key":"bad key","value":"v"}]}}""", "is not a header name")]
    [InlineData("""{"fanout":{"actions":[{"fanout":{"actions":[]}}]}}""", "other than fanout")]
    [InlineData("""{"queue":{}}""", "queue.queueName is required")]
    [InlineData("""{"timeseries":{"thingName":"${"}}""", "timeseries.thingName")]
    [InlineData("""{"republish":{"topic":"a","headers":{"expiry":"1"}}}""", "unknown header(s) expiry")]
    [InlineData("""{"republish":{"topic":"a","headers":{"userProperties":[{"key":"k"}]}}}""", "userProperties.value is required")]
    public async Task ActionsWithBadTargets_AreRefused_WhenTheRuleIsCreated(string action, string message)
    {
        var response = await node.Http.PostAsync($"/api/rules/{Name("bad")}", Body($$"""{"sql":"SELECT * FROM 'a'","actions":[{{action}}]}"""));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(message, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task RulesOnThePlatformsOwnTopics_SeeShadowDocumentsAndPresenceEvents()
    {
        var (rule, presence, thing) = (Name("plat"), Name("pres"), Ids.NewId("thing"));
        await CreateRuleAsync(node.Http, rule,
            $"SELECT current.state.reported.mode AS mode, topic(3) AS thing FROM '$aws/things/{thing}/shadow/update/documents'",
            [Action("republish", new JsonObject { ["topic"] = $"docs/{thing}", ["qos"] = 1 })]);
        var device = Ids.NewId("dev");
        await CreateRuleAsync(node.Http, presence,
            $"SELECT clientId, eventType FROM '$aws/events/presence/+/{device}'",
            [Action("republish", new JsonObject { ["topic"] = $"presence/{device}", ["qos"] = 1 })]);
        var (app, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"docs/{thing}", MqttQualityOfServiceLevel.AtLeastOnce);
        await app.SubscribeAsync($"presence/{device}", MqttQualityOfServiceLevel.AtLeastOnce);

        // Nodes learn of rules on platform topics within a second: update until one document comes through.
        var n = 0;
        await Eventually.True(async () =>
        {
            await node.Http.PostAsync($"/things/{thing}/shadow", Body($"{{\"state\":{{\"reported\":{{\"mode\":\"m{++n}\"}}}}}}"));
            return inbox.Payloads($"docs/{thing}").Count > 0;
        }, "a shadow document through the rule");
        var doc = JsonNode.Parse(inbox.Payloads($"docs/{thing}")[0])!;
        Assert.StartsWith("m", (string)doc["mode"]!, StringComparison.Ordinal);
        Assert.Equal(thing, (string)doc["thing"]!);

        // The same for the presence rule, created after the shadow one: a node that read the catalog between the two
        // learns of it a second later, and events before that are not the rule's. Connect until one comes through.
        JsonNode? connected = null;
        await Eventually.True(async () =>
        {
            var client = await node.ConnectAsync(device);
            await client.DisconnectAsync();
            connected = inbox.Payloads($"presence/{device}").Select(p => JsonNode.Parse(p)!).FirstOrDefault(e => (string)e["eventType"]! == "connected");
            return connected is not null;
        }, "the connected event through the rule");
        Assert.Equal(device, (string)connected!["clientId"]!);
    }

    [Fact]
    public async Task Republish_SetsTheMqtt5Headers_FromTemplates()
    {
        var (rule, root) = (Name("hdr"), Ids.NewId("hdr"));
        await CreateRuleAsync(node.Http, rule, $"SELECT v, 'c-' + topic(2) AS corr FROM '{root}/+'", [Action("republish", new JsonObject
        {
            ["topic"] = $"out/{root}",
            ["qos"] = 1,
            ["headers"] = new JsonObject
            {
                ["payloadFormatIndicator"] = "UTF8_DATA",
                ["contentType"] = "application/json",
                ["responseTopic"] = "${topic()}/reply",
                ["correlationData"] = "${encode(topic(2), 'base64')}",
                ["messageExpiry"] = "${60 * 5}",
                ["userProperties"] = new JsonArray(new JsonObject { ["key"] = "device", ["value"] = "${topic(2)}" }, new JsonObject { ["key"] = "k", ["value"] = "v" }),
            },
        })]);
        var received = new TaskCompletionSource<MqttApplicationMessage>(TaskCreationOptions.RunContinuationsAsynchronously);
        var app = node.NewClient();
        app.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        await app.ConnectAsync(node.Options(Ids.NewId("app")).Build());
        await app.SubscribeAsync($"out/{root}", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        await device.PublishStringAsync($"{root}/d7", "{\"v\":1}", MqttQualityOfServiceLevel.AtLeastOnce);

        var message = await received.Task.WaitAsync(TimeSpan.FromSeconds(15));
        Assert.Equal(MqttPayloadFormatIndicator.CharacterData, message.PayloadFormatIndicator);
        Assert.Equal("application/json", message.ContentType);
        Assert.Equal($"{root}/d7/reply", message.ResponseTopic);
        Assert.Equal("d7", Encoding.UTF8.GetString(message.CorrelationData));
        Assert.InRange(message.MessageExpiryInterval, 295u, 300u);
        Assert.Equal([("device", "d7"), ("k", "v")], message.UserProperties.Select(p => (p.Name, Encoding.UTF8.GetString(p.ValueBuffer.ToArray()))));
    }

    [Fact]
    public async Task Metrics_CountMatchedExecutedAndFailed_PerRuleAndAction_WithDurations()
    {
        var (rule, root) = (Name("met"), Ids.NewId("met"));
        var measurements = new System.Collections.Concurrent.ConcurrentBag<(string Instrument, double Value, string? Rule, string? Action)>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "OrleansIot.Rules")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        void Record(System.Diagnostics.Metrics.Instrument instrument, double value, ReadOnlySpan<KeyValuePair<string, object?>> tags)
        {
            string? r = null, a = null;
            foreach (var tag in tags)
            {
                (r, a) = tag.Key switch { "rule" => ((string?)tag.Value, a), "action" => (r, (string?)tag.Value), _ => (r, a) };
            }

            if (r == rule)
            {
                measurements.Add((instrument.Name, value, r, a));
            }
        }

        listener.SetMeasurementEventCallback<long>((i, v, t, _) => Record(i, v, t));
        listener.SetMeasurementEventCallback<double>((i, v, t, _) => Record(i, v, t));
        listener.Start();
        await CreateRuleAsync(node.Http, rule, $"SELECT * FROM '{root}'",
            [Action("republish", new JsonObject { ["topic"] = $"m/{root}" }), Action("republish", new JsonObject { ["topic"] = "bad/${name}" })]);
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        await device.PublishStringAsync(root, "{\"name\":\"a+b\"}", MqttQualityOfServiceLevel.AtLeastOnce);

        await Eventually.True(() => Task.FromResult(measurements.Any(m => m.Instrument == "iot.rules.actions.failed")), "the failed action counted");
        Assert.Contains(measurements, m => m.Instrument == "iot.rules.matched" && m.Value == 1);
        Assert.Contains(measurements, m => m.Instrument == "iot.rules.actions.executed" && m.Action == "RepublishAction");
        Assert.Contains(measurements, m => m.Instrument == "iot.rules.actions.failed" && m.Action == "RepublishAction");
        Assert.Equal(2, measurements.Count(m => m.Instrument == "iot.rules.actions.duration" && m.Value >= 0));
    }
}
