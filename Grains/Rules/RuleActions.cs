using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Rules;
using OrleansIot.Grains.Abstractions.Shadows;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Grains.Rules;

/// <summary>What an action gets: the message, the rule's output, and the services actions use.</summary>
internal sealed record ActionContext(string RuleName, SqlContext Message, byte[] Output, IBrokerPublisher Broker, IGrainFactory Grains);

/// <summary>An action ready to run; <see cref="Type"/> and <see cref="Resource"/> name it in AWS's error document.</summary>
internal sealed record CompiledAction(string Type, Func<ActionContext, string> Resource, Func<ActionContext, Task> Run);

/// <summary>
/// Rule actions (AWS's <c>Action</c> shapes). Implemented: <c>republish</c> (topic as a substitution template, QoS 0/1,
/// <c>$$aws/…</c> for reserved topics: a shadow request topic goes to the thing's shadow) and <c>grain</c> (ours: a
/// grain implementing <see cref="IRuleActionHandler"/>). Other action types are refused when the rule is created, not
/// accepted and ignored.
/// </summary>
internal static class RuleActions
{
    public static readonly string[] Supported = ["republish", "grain"];

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
            "republish" => Republish(body as JsonObject ?? throw ApiException.Invalid("republish must be an object.")),
            "grain" => Grain(body as JsonObject ?? throw ApiException.Invalid("grain must be an object.")),
            _ => throw ApiException.Invalid($"Action type '{type}' is not supported yet; supported: {string.Join(", ", Supported)}."),
        };
    }

    /// <summary><c>{"grain": {"grainType": "…", "key": "template"}}</c>: calls the handler grain with the rule's output.</summary>
    private static CompiledAction Grain(JsonObject body)
    {
        if (body["grainType"] is not JsonValue typeNode || !typeNode.TryGetValue<string>(out var grainType) || grainType.Length == 0)
        {
            throw ApiException.Invalid("grain.grainType is required (the [GrainType] of a grain implementing IRuleActionHandler).");
        }

        var keyTemplate = body["key"] is JsonValue keyNode && keyNode.TryGetValue<string>(out var k) ? k : "${topic()}";
        SqlTemplate key;
        try
        {
            key = SqlTemplate.Parse(keyTemplate);
        }
        catch (SqlSyntaxException ex)
        {
            throw ApiException.Invalid($"grain.key: {ex.Message}");
        }

        return new CompiledAction("GrainAction", c => $"{grainType}/{key.Render(c.Message)}", async c =>
        {
            var handler = c.Grains.GetGrain(GrainId.Create(grainType, key.Render(c.Message))).AsReference<IRuleActionHandler>();
            await handler.Handle(new RuleActionMessage(c.RuleName, c.Message.Topic, c.Message.ClientId, c.Output, c.Message.TimestampMs));
        });
    }

    private static CompiledAction Republish(JsonObject body)
    {
        if (body["topic"] is not JsonValue topicNode || !topicNode.TryGetValue<string>(out var topicTemplate) || topicTemplate.Length == 0)
        {
            throw ApiException.Invalid("republish.topic is required.");
        }

        var qos = 0;
        if (body["qos"] is { } qosNode && (qosNode is not JsonValue q || !q.TryGetValue(out qos) || qos is < 0 or > 1))
        {
            throw ApiException.Invalid("republish.qos must be 0 or 1.");
        }

        SqlTemplate template;
        try
        {
            template = SqlTemplate.Parse(topicTemplate);
        }
        catch (SqlSyntaxException ex)
        {
            throw ApiException.Invalid($"republish.topic: {ex.Message}");
        }

        string Topic(ActionContext c)
        {
            var topic = template.Render(c.Message);
            return topic.StartsWith("$$", StringComparison.Ordinal) ? topic[1..] : topic;
        }

        return new CompiledAction("RepublishAction", Topic, async c =>
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
                var thing = c.Grains.GetGrain<IThingGrain>(shadow.ThingName);
                var request = new ShadowRequest(shadow.ShadowName, c.Output, ShadowChannel.Mqtt);
                _ = shadow.Operation switch
                {
                    ShadowOperation.Get => await thing.GetShadow(request),
                    ShadowOperation.Update => await thing.UpdateShadow(request),
                    _ => await thing.DeleteShadow(request),
                };
                return;
            }

            c.Broker.Publish(topic, c.Output, qos);
        });
    }
}
