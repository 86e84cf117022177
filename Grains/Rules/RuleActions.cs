using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Rules;
using OrleansIot.Grains.Abstractions.Shadows;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Analytics;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Grains.Rules;

/// <summary>
/// Rule actions (AWS's <c>Action</c> shapes where AWS has one): <c>republish</c> (topic as a substitution template,
/// QoS 0/1, <c>$$aws/…</c> for reserved topics: a shadow request topic goes to the thing's shadow), <c>grain</c> (ours,
/// the Lambda: a grain implementing <see cref="IRuleActionHandler"/>), <c>timeseries</c> (the analytics sink),
/// <c>postgres</c> (a row in a table: the DynamoDB of this system), <c>http</c> (webhooks), <c>queue</c> (a durable
/// queue: the SQS) and <c>fanout</c> (several targets: the SNS). Unknown types are refused when the rule is created,
/// not accepted and ignored.
/// </summary>
internal static partial class RuleActions
{
    public static readonly string[] Supported = ["republish", "grain", "timeseries", "postgres", "http", "queue", "fanout"];

    public static void Validate(JsonObject action) => Compile(action);

    public static CompiledAction Compile(JsonObject action)
    {
        if (action.Count != 1)
        {
            throw ApiException.Invalid("Each action names exactly one action type, e.g. {\"republish\": {...}}.");
        }

        var (type, body) = action.First();
        return type switch
        {
            "republish" => Republish(Body(type, body)),
            "grain" => Grain(Body(type, body)),
            "timeseries" => Timeseries(Body(type, body)),
            "postgres" => Postgres(Body(type, body)),
            "http" => Http(Body(type, body)),
            "queue" => Queue(Body(type, body)),
            "fanout" => Fanout(Body(type, body)),
            _ => throw ApiException.Invalid($"Action type '{type}' is not supported yet; supported: {string.Join(", ", Supported)}."),
        };
    }

    private static JsonObject Body(string type, JsonNode? body) => body as JsonObject ?? throw ApiException.Invalid($"{type} must be an object.");

    /// <summary>A required string property of an action, or the default.</summary>
    private static string Text(JsonObject body, string action, string name, string? fallback = null)
    {
        if (body[name] is null && fallback is not null)
        {
            return fallback;
        }

        return body[name] is JsonValue node && node.TryGetValue<string>(out var value) && value.Length > 0
            ? value
            : throw ApiException.Invalid($"{action}.{name} is required (a non-empty string).");
    }

    /// <summary>A substitution template (<c>${expression}</c>) of an action, parsed once.</summary>
    private static SqlTemplate Template(JsonObject body, string action, string name, string? fallback = null)
    {
        try
        {
            return SqlTemplate.Parse(Text(body, action, name, fallback));
        }
        catch (SqlSyntaxException ex)
        {
            throw ApiException.Invalid($"{action}.{name}: {ex.Message}");
        }
    }

    /// <summary>
    /// <c>{"fanout": {"actions": [{…}, {…}]}}</c>: every target gets the output (up to 10, no nested fanout); a failed
    /// target fails the fanout, naming which, after the others ran.
    /// </summary>
    private static CompiledAction Fanout(JsonObject body)
    {
        if (body["actions"] is not JsonArray targets || targets.Count is 0 or > 10)
        {
            throw ApiException.Invalid("fanout.actions must list 1 to 10 actions.");
        }

        var compiled = targets.Select(t => t is JsonObject o && !o.ContainsKey("fanout")
            ? Compile(o)
            : throw ApiException.Invalid("fanout.actions: each is an action object other than fanout.")).ToList();
        return new CompiledAction("FanoutAction", c => string.Join(",", compiled.Select(a => a.Type)), async (c, onFailure) =>
        {
            List<string>? failures = null;
            for (var i = 0; i < compiled.Count; i++)
            {
                var index = i;
                try
                {
                    await compiled[i].Run(c, ex => onFailure(new InvalidOperationException($"target {index} ({compiled[index].Type}): {ex.Message}", ex)));
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    (failures ??= []).Add($"target {i} ({compiled[i].Type}): {ex.Message}");
                }
            }

            if (failures is not null)
            {
                throw new InvalidOperationException(string.Join("; ", failures));
            }
        });
    }

    /// <summary>
    /// <c>{"timeseries": {"thingName": "${topic(2)}"}}</c> (default <c>${clientid()}</c>): stores the output (JSON) in the
    /// analytics sink under that thing at the message's arrival time; written with the rest of the stream batch.
    /// </summary>
    private static CompiledAction Timeseries(JsonObject body)
    {
        var thing = Template(body, "timeseries", "thingName", "${clientid()}");
        return new CompiledAction("TimeseriesAction", c => thing.Render(c.Message), (c, onFailure) =>
        {
            var thingName = thing.Render(c.Message);
            if (thingName.Length is 0 or > 128)
            {
                throw new InvalidOperationException($"timeseries: thing name '{thingName}' must be 1 to 128 characters.");
            }

            if (!c.OutputIsJson)
            {
                throw new InvalidOperationException("timeseries: the rule's output is not JSON.");
            }

            var store = c.Services.Telemetry;
            c.Batch.Add(store, c.RuleName, "TimeseriesAction", records => store.AppendAsync(records, CancellationToken.None),
                new TelemetryRecord(thingName, c.ReceivedAt, c.MessageId, c.RuleName, c.Message.Topic, c.Output), onFailure);
            return Task.CompletedTask;
        }, Deferred: true);
    }

    /// <summary><c>{"grain": {"grainType": "…", "key": "template"}}</c>: calls the handler grain with the rule's output.</summary>
    private static CompiledAction Grain(JsonObject body)
    {
        var grainType = Text(body, "grain", "grainType");
        var key = Template(body, "grain", "key", "${topic()}");
        return new CompiledAction("GrainAction", c => $"{grainType}/{key.Render(c.Message)}", async (c, _) =>
        {
            var handler = c.Services.Grains.GetGrain(GrainId.Create(grainType, key.Render(c.Message))).AsReference<IRuleActionHandler>();
            await handler.Handle(new RuleActionMessage(c.RuleName, c.Message.Topic, c.Message.ClientId, c.Output, c.Message.TimestampMs));
        });
    }

    /// <summary>
    /// AWS republish <c>headers</c> (MQTT 5 properties), each a substitution template: <c>payloadFormatIndicator</c>
    /// (<c>UNSPECIFIED_BYTES</c> | <c>UTF8_DATA</c>), <c>contentType</c>, <c>responseTopic</c>, <c>correlationData</c>
    /// (base64), <c>messageExpiry</c> (seconds) and <c>userProperties</c> (<c>[{"key", "value"}]</c>, at most 100).
    /// </summary>
    private static Func<ActionContext, MessageHeaders> Headers(JsonObject body)
    {
        var unknown = body.Select(p => p.Key).Except(["payloadFormatIndicator", "contentType", "responseTopic", "correlationData", "messageExpiry", "userProperties"]).ToList();
        if (unknown.Count > 0)
        {
            throw ApiException.Invalid($"republish.headers: unknown header(s) {string.Join(", ", unknown)}.");
        }

        SqlTemplate? Optional(string name) => body[name] is null ? null : Template(body, "republish.headers", name);
        var format = Optional("payloadFormatIndicator");
        var contentType = Optional("contentType");
        var responseTopic = Optional("responseTopic");
        var correlation = Optional("correlationData");
        var expiry = Optional("messageExpiry");
        var properties = new List<(SqlTemplate Key, SqlTemplate Value)>();
        if (body["userProperties"] is { } list)
        {
            if (list is not JsonArray items || items.Count > 100)
            {
                throw ApiException.Invalid("republish.headers.userProperties must be an array of at most 100 {\"key\", \"value\"} objects.");
            }

            foreach (var item in items)
            {
                var pair = item as JsonObject ?? throw ApiException.Invalid("republish.headers.userProperties: each is a {\"key\", \"value\"} object.");
                properties.Add((Template(pair, "republish.headers.userProperties", "key"), Template(pair, "republish.headers.userProperties", "value")));
            }
        }

        return c =>
        {
            var indicator = format?.Render(c.Message);
            if (indicator is not (null or "UNSPECIFIED_BYTES" or "UTF8_DATA"))
            {
                throw new InvalidOperationException($"republish: payloadFormatIndicator '{indicator}' is neither UNSPECIFIED_BYTES nor UTF8_DATA.");
            }

            byte[]? correlationData = null;
            if (correlation?.Render(c.Message) is { Length: > 0 } base64)
            {
                try
                {
                    correlationData = Convert.FromBase64String(base64);
                }
                catch (FormatException)
                {
                    throw new InvalidOperationException("republish: correlationData is not base64.");
                }
            }

            var seconds = 0u;
            if (expiry?.Render(c.Message) is { Length: > 0 } text && !uint.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out seconds))
            {
                throw new InvalidOperationException($"republish: messageExpiry '{text}' is not a whole number of seconds.");
            }

            return new MessageHeaders(
                contentType?.Render(c.Message) is { Length: > 0 } type ? type : null,
                responseTopic?.Render(c.Message) is { Length: > 0 } response ? response : null,
                correlationData,
                seconds,
                indicator == "UTF8_DATA",
                properties.Count == 0 ? null : [.. properties.Select(p => new KeyValuePair<string, string>(p.Key.Render(c.Message), p.Value.Render(c.Message)))]);
        };
    }

    private static CompiledAction Republish(JsonObject body)
    {
        var qos = 0;
        if (body["qos"] is { } qosNode && (qosNode is not JsonValue q || !q.TryGetValue(out qos) || qos is < 0 or > 1))
        {
            throw ApiException.Invalid("republish.qos must be 0 or 1.");
        }

        var template = Template(body, "republish", "topic");
        var headers = body["headers"] is null ? null : Headers(Body("republish.headers", body["headers"]));

        string Topic(ActionContext c)
        {
            var topic = template.Render(c.Message);
            return topic.StartsWith("$$", StringComparison.Ordinal) ? topic[1..] : topic;
        }

        return new CompiledAction("RepublishAction", Topic, async (c, failed) =>
        {
            var topic = Topic(c);
            if (!TopicFilter.IsValidTopic(topic))
            {
                throw new InvalidOperationException($"'{topic}' is not a valid topic name.");
            }

            if (topic.StartsWith("$aws/rules/", StringComparison.Ordinal) || topic.Contains("/jobs/", StringComparison.Ordinal) && topic.StartsWith("$aws/things/", StringComparison.Ordinal))
            {
                throw new InvalidOperationException($"Republishing to '{topic}' is not supported (AWS: not to jobs or Basic Ingest topics).");
            }

            if (ShadowTopics.TryParse(topic, out var shadow) && shadow.IsRequest)
            {
                // $$aws/things/T/shadow/update: a shadow request as a device would make it (answered on the response topics).
                var thing = c.Services.Grains.GetGrain<IThingGrain>(shadow.ThingName);
                var request = new ShadowRequest(shadow.ShadowName, c.Output, ShadowChannel.Mqtt);
                _ = shadow.Operation switch
                {
                    ShadowOperation.Get => await thing.GetShadow(request),
                    ShadowOperation.Update => await thing.UpdateShadow(request),
                    _ => await thing.DeleteShadow(request),
                };
                return;
            }

            if (headers is null)
            {
                c.Services.Broker.Publish(topic, c.Output, qos);
            }
            else
            {
                c.Services.Broker.Publish(topic, c.Output, qos, headers(c));
            }
        });
    }
}
