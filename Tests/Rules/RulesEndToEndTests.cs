using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;

namespace OrleansIot.Tests.Rules;

/// <summary>Rules on one node, end to end: created over HTTP, evaluated on the telemetry stream, acting through the broker.</summary>
[Collection(NodeCollection.Name)]
public sealed class RulesEndToEndTests(NodeFixture node)
{
    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    private static string RuleName() => "r_" + Guid.NewGuid().ToString("N")[..10];

    private async Task CreateAsync(string name, string payload)
    {
        var response = await node.Http.PostAsync($"/api/rules/{name}", Body(payload));
        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
    }

    private static string Rule(string sql, string topic, string? errorTopic = null) =>
        new JsonObject
        {
            ["sql"] = sql,
            ["awsIotSqlVersion"] = "2016-03-23",
            ["actions"] = new JsonArray(new JsonObject { ["republish"] = new JsonObject { ["topic"] = topic, ["qos"] = 1 } }),
            ["errorAction"] = errorTopic is null ? null : new JsonObject { ["republish"] = new JsonObject { ["topic"] = errorTopic, ["qos"] = 1 } },
        }.ToJsonString();

    [Fact]
    public async Task ARule_FiltersTransformsAndRepublishes_WithATopicTemplate()
    {
        var (name, root) = (RuleName(), Ids.NewId("dt"));
        await CreateAsync(name, Rule($"SELECT temperature, topic(2) AS device FROM '{root}/+/telemetry' WHERE temperature > 0", $"out/{root}/${{topic(2)}}"));
        var (app, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"out/{root}/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        await device.PublishStringAsync($"{root}/dev1/telemetry", "{\"temperature\":-5}", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.PublishStringAsync($"{root}/dev1/telemetry", "{\"temperature\":21,\"noise\":1}", MqttQualityOfServiceLevel.AtLeastOnce);

        // Same device, same partition, in order: had the cold reading passed WHERE, it would have come first.
        var outputs = await inbox.WaitAsync($"out/{root}/dev1", 1, "the republished output");
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("{\"temperature\":21,\"device\":\"dev1\"}"), JsonNode.Parse(outputs[0])));
    }

    [Fact]
    public async Task BasicIngest_ReachesTheRuleOnly_NotSubscribers()
    {
        var name = RuleName();
        await CreateAsync(name, Rule("SELECT VALUE reading FROM 'nothing/matches/this'", $"ingested/{name}"));
        var (app, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"$aws/rules/{name}/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await app.SubscribeAsync($"ingested/{name}", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        var ack = await device.PublishStringAsync($"$aws/rules/{name}/site/1", "{\"reading\":42}", MqttQualityOfServiceLevel.AtLeastOnce);

        Assert.True(ack.IsSuccess);
        Assert.Equal(["42"], await inbox.WaitAsync($"ingested/{name}", 1, "the rule's output"));
        Assert.Empty(inbox.Payloads("$aws/rules/"));   // a direct delivery would have come before the rule's output
    }

    [Fact]
    public async Task RepublishTo_DollarDollarAws_UpdatesTheShadow()
    {
        var (name, root) = (RuleName(), Ids.NewId("sh"));
        await CreateAsync(name, Rule($"SELECT VALUE {{'state': {{'reported': {{'temp': temperature}}}}}} FROM '{root}/+/t'", "$$aws/things/${topic(2)}/shadow/update"));
        var device = await node.ConnectAsync(Ids.NewId("dev"));
        var thing = Ids.NewId("thing");

        await device.PublishStringAsync($"{root}/{thing}/t", "{\"temperature\":19}", MqttQualityOfServiceLevel.AtLeastOnce);

        var shadow = await Eventually.Get(
            async () => await node.Http.GetAsync($"/things/{thing}/shadow") is { IsSuccessStatusCode: true } r ? JsonNode.Parse(await r.Content.ReadAsStringAsync()) : null,
            d => d is not null, "the shadow written by the rule");
        Assert.Equal(19, (int)shadow!["state"]!["reported"]!["temp"]!);
    }

    [Fact]
    public async Task AFailingAction_TriggersTheErrorAction_WithAwsErrorDocument()
    {
        var (name, root) = (RuleName(), Ids.NewId("er"));
        // The topic template renders to a name with '+', which is not a valid topic: the republish fails.
        await CreateAsync(name, Rule($"SELECT * FROM '{root}/#'", "bad/${name}", errorTopic: $"errors/{name}"));
        var (app, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"errors/{name}", MqttQualityOfServiceLevel.AtLeastOnce);
        var clientId = Ids.NewId("dev");
        var device = await node.ConnectAsync(clientId);

        await device.PublishStringAsync($"{root}/x", "{\"name\":\"a+b\"}", MqttQualityOfServiceLevel.AtLeastOnce);

        var error = JsonNode.Parse((await inbox.WaitAsync($"errors/{name}", 1, "the error action"))[0])!;
        Assert.Equal(name, (string)error["ruleName"]!);
        Assert.Equal($"{root}/x", (string)error["topic"]!);
        Assert.Equal(clientId, (string)error["clientId"]!);
        Assert.Equal("{\"name\":\"a+b\"}", Encoding.UTF8.GetString(Convert.FromBase64String((string)error["base64OriginalPayload"]!)));
        var failure = error["failures"]![0]!;
        Assert.Equal("RepublishAction", (string)failure["failedAction"]!);
        Assert.Equal("bad/a+b", (string)failure["failedResource"]!);
        Assert.Contains("not a valid topic", (string)failure["errorMessage"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task GrainAction_CallsTheHandlerGrain_KeyedByItsTemplate_AndAFailingHandlerTriggersTheErrorAction()
    {
        var (name, root) = (RuleName(), Ids.NewId("gr"));
        var rule = new JsonObject
        {
            ["sql"] = $"SELECT amount, topic(2) AS account FROM '{root}/+/charge'",
            ["actions"] = new JsonArray(
                new JsonObject { ["grain"] = new JsonObject { ["grainType"] = "test-rule-handler", ["key"] = $"{root}-${{topic(2)}}" } },
                new JsonObject { ["grain"] = new JsonObject { ["grainType"] = "test-refusing-handler" } }),
            ["errorAction"] = new JsonObject { ["republish"] = new JsonObject { ["topic"] = $"errors/{name}", ["qos"] = 1 } },
        };
        await CreateAsync(name, rule.ToJsonString());
        var (app, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"errors/{name}", MqttQualityOfServiceLevel.AtLeastOnce);
        var clientId = Ids.NewId("dev");
        var device = await node.ConnectAsync(clientId);

        await device.PublishStringAsync($"{root}/acct7/charge", "{\"amount\":12}", MqttQualityOfServiceLevel.AtLeastOnce);

        // The error action runs after every action of the invocation: once it is in, the first handler was called.
        var error = JsonNode.Parse((await inbox.WaitAsync($"errors/{name}", 1, "the error action"))[0])!;
        var failure = Assert.Single(error["failures"]!.AsArray())!;
        Assert.Equal("GrainAction", (string)failure["failedAction"]!);
        Assert.Contains("credit limit reached", (string)failure["errorMessage"]!, StringComparison.Ordinal);
        var handled = Assert.Single(RecordingRuleHandlerGrain.Handled[$"{root}-acct7"]);
        Assert.Equal(name, handled.RuleName);
        Assert.Equal($"{root}/acct7/charge", handled.Topic);
        Assert.Equal(clientId, handled.ClientId);
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse("{\"amount\":12,\"account\":\"acct7\"}"), JsonNode.Parse(handled.Output)));
    }

    [Fact]
    public async Task DisabledRule_DoesNotFire_ReEnabledItDoes()
    {
        var (name, marker, root) = (RuleName(), RuleName(), Ids.NewId("dis"));
        await CreateAsync(name, Rule($"SELECT * FROM '{root}/a'", $"fired/{root}"));
        await CreateAsync(marker, Rule($"SELECT * FROM '{root}/b'", $"marker/{root}"));
        var (app, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(Ids.NewId("app")));
        await app.SubscribeAsync($"fired/{root}", MqttQualityOfServiceLevel.AtLeastOnce);
        await app.SubscribeAsync($"marker/{root}", MqttQualityOfServiceLevel.AtLeastOnce);
        var device = await node.ConnectAsync(Ids.NewId("dev"));

        Assert.True((await node.Http.PostAsync($"/api/rules/{name}/disable", null)).IsSuccessStatusCode);
        await device.PublishStringAsync($"{root}/a", "1", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.PublishStringAsync($"{root}/b", "m", MqttQualityOfServiceLevel.AtLeastOnce);
        await inbox.WaitAsync($"marker/{root}", 1, "the marker rule's output");
        Assert.Empty(inbox.Payloads($"fired/{root}"));

        Assert.True((await node.Http.PostAsync($"/api/rules/{name}/enable", null)).IsSuccessStatusCode);
        await device.PublishStringAsync($"{root}/a", "2", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Equal(["2"], await inbox.WaitAsync($"fired/{root}", 1, "the re-enabled rule's output"));
    }

    [Fact]
    public async Task RulesApi_CreateGetListReplaceDelete_AndBadInput_AsAws()
    {
        var name = RuleName();
        await CreateAsync(name, Rule("SELECT * FROM 'api/+'", "x/y"));

        var duplicate = await node.Http.PostAsync($"/api/rules/{name}", Body(Rule("SELECT * FROM 'api/+'", "x/y")));
        var badSql = await node.Http.PostAsync($"/api/rules/{RuleName()}", Body(Rule("SELECT * FROM api", "x/y")));
        var badAction = await node.Http.PostAsync($"/api/rules/{RuleName()}", Body("""{"sql":"SELECT * FROM 'a'","actions":[{"lambda":{"functionArn":"x"}}]}"""));
        var noGrainType = await node.Http.PostAsync($"/api/rules/{RuleName()}", Body("""{"sql":"SELECT * FROM 'a'","actions":[{"grain":{}}]}"""));
        var badName = await node.Http.PostAsync("/api/rules/bad-name", Body(Rule("SELECT * FROM 'a'", "x")));
        var replaced = await node.Http.PatchAsync($"/api/rules/{name}", Body(Rule("SELECT a FROM 'api/#'", "x/z")));
        var got = JsonNode.Parse(await node.Http.GetStringAsync($"/api/rules/{name}"))!;
        var listed = JsonNode.Parse(await node.Http.GetStringAsync("/api/rules?topic=api/%23"))!;
        var deleted = await node.Http.DeleteAsync($"/api/rules/{name}");
        var gone = await node.Http.GetAsync($"/api/rules/{name}");

        Assert.Equal(HttpStatusCode.Conflict, duplicate.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, badSql.StatusCode);
        Assert.Contains("SqlParseException", await badSql.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badAction.StatusCode);
        Assert.Contains("'lambda' is not supported yet", await badAction.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.BadRequest, badName.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, noGrainType.StatusCode);
        Assert.True(replaced.IsSuccessStatusCode);
        Assert.Equal("SELECT a FROM 'api/#'", (string)got["rule"]!["sql"]!);
        Assert.Equal("x/z", (string)got["rule"]!["actions"]![0]!["republish"]!["topic"]!);
        Assert.EndsWith($":rule/{name}", (string)got["ruleArn"]!, StringComparison.Ordinal);
        Assert.Contains(listed["rules"]!.AsArray(), r => (string)r!["ruleName"]! == name && (string)r["topicPattern"]! == "api/#");
        Assert.True(deleted.IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.NotFound, gone.StatusCode);
    }
}
