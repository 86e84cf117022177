using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Rules;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Control plane: topic rules with AWS's paths and shapes (<c>CreateTopicRule</c> <c>POST /api/rules/{name}</c> with the
/// <c>TopicRulePayload</c> as body, <c>GetTopicRule</c>, <c>ListTopicRules</c>, <c>ReplaceTopicRule</c> (PATCH),
/// <c>EnableTopicRule</c>, <c>DisableTopicRule</c>, <c>DeleteTopicRule</c>), and the SQL try-it endpoint
/// <c>POST /api/rules/test</c> (so "test" cannot be a rule name here).
/// </summary>
public static class RulesApi
{
    public static IEndpointRouteBuilder MapRulesApi(this IEndpointRouteBuilder endpoints)
    {
        var rules = endpoints.MapGroup("/api/rules").WithTags("Rules").ChangedBy(ApiKeyRoles.Operator);
        rules.MapPost("/test", TestAsync).WithName("TestRuleSql").ReadOnly();
        rules.MapPost("/{ruleName}", CreateAsync).WithName("CreateTopicRule");
        rules.MapGet("/{ruleName}", GetAsync).WithName("GetTopicRule");
        rules.MapMethods("/{ruleName}", ["PATCH"], ReplaceAsync).WithName("ReplaceTopicRule");
        rules.MapPost("/{ruleName}/enable", (string ruleName, IGrainFactory grains) => SetEnabledAsync(ruleName, true, grains)).WithName("EnableTopicRule");
        rules.MapPost("/{ruleName}/disable", (string ruleName, IGrainFactory grains) => SetEnabledAsync(ruleName, false, grains)).WithName("DisableTopicRule");
        rules.MapDelete("/{ruleName}", DeleteAsync).WithName("DeleteTopicRule");
        rules.MapGet("", ListAsync).WithName("ListTopicRules");
        return endpoints;
    }

    private static async Task<IResult> CreateAsync(string ruleName, JsonObject body, IGrainFactory grains)
    {
        await grains.GetGrain<IRuleGrain>(ruleName).Create(Input(body));
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> ReplaceAsync(string ruleName, JsonObject body, IGrainFactory grains)
    {
        await grains.GetGrain<IRuleGrain>(ruleName).Replace(Input(body));
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> GetAsync(string ruleName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var rule = await grains.GetGrain<IRuleGrain>(ruleName).Get();
        return rule is null
            ? Problems.NotFound("ResourceNotFoundException", $"Rule {ruleName} cannot be found.")
            : JsonText.Result(new JsonObject { ["ruleArn"] = options.Value.Arn($"rule/{rule.RuleName}"), ["rule"] = Document(rule) });
    }

    private static async Task<IResult> SetEnabledAsync(string ruleName, bool enabled, IGrainFactory grains)
    {
        await grains.GetGrain<IRuleGrain>(ruleName).SetEnabled(enabled);
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> DeleteAsync(string ruleName, IGrainFactory grains)
    {
        await grains.GetGrain<IRuleGrain>(ruleName).Delete();
        return TypedResults.Ok(new { });
    }

    private static async Task<IResult> ListAsync(string? topic, bool? ruleDisabled, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var set = await grains.GetGrain<IRuleCatalogGrain>(IRuleCatalogGrain.Key).Get();
        var rules = set.Rules
            .Where(r => (topic is null || r.TopicPattern == topic) && (ruleDisabled is null || r.RuleDisabled == ruleDisabled))
            .Select(r => (JsonNode?)new JsonObject
            {
                ["ruleArn"] = options.Value.Arn($"rule/{r.RuleName}"),
                ["ruleName"] = r.RuleName,
                ["topicPattern"] = r.TopicPattern,
                ["createdAt"] = r.CreatedAt.ToUnixTimeSeconds(),
                ["ruleDisabled"] = r.RuleDisabled,
            });
        return JsonText.Result(new JsonObject { ["rules"] = new JsonArray([.. rules]) });
    }

    private static JsonObject Document(TopicRule rule)
    {
        var document = new JsonObject
        {
            ["ruleName"] = rule.RuleName,
            ["sql"] = rule.Sql,
            ["description"] = rule.Description,
            ["createdAt"] = rule.CreatedAt.ToUnixTimeSeconds(),
            ["actions"] = JsonNode.Parse(rule.ActionsJson),
            ["ruleDisabled"] = rule.RuleDisabled,
            ["awsIotSqlVersion"] = rule.AwsIotSqlVersion,
        };
        if (rule.ErrorActionJson is { } error)
        {
            document["errorAction"] = JsonNode.Parse(error);
        }

        return document;
    }

    /// <summary>AWS's <c>TopicRulePayload</c>: <c>sql</c> required; actions and errorAction kept as JSON for the rule grain to check.</summary>
    private static TopicRuleInput Input(JsonObject body)
    {
        var sql = JsonText.Field(body, "sql") ?? throw ApiException.Invalid("sql is required.");
        var actions = body["actions"] ?? new JsonArray();
        var disabled = JsonText.Flag(body, "ruleDisabled") == true;
        return new TopicRuleInput(sql, JsonText.Field(body, "description"), actions.ToJsonString(), body["errorAction"]?.ToJsonString(), disabled, JsonText.Field(body, "awsIotSqlVersion"));
    }

    /// <summary>
    /// <c>{"sql", "topic", "payload" (any JSON value) | "payloadBase64", "clientId", "principal"}</c> →
    /// <c>{"topicMatches", "selected", "output" (JSON) | "outputBase64" (bytes that are not JSON)}</c>; a syntax error is a
    /// 400 problem with the position.
    /// </summary>
    public sealed record TestBody(string? Sql, string? Topic, JsonNode? Payload, string? PayloadBase64, string? ClientId, string? Principal);

    private static async Task<IResult> TestAsync(TestBody body, IGrainFactory grains)
    {
        if (string.IsNullOrWhiteSpace(body.Sql) || string.IsNullOrEmpty(body.Topic))
        {
            return Problems.BadRequest("InvalidRequestException", "sql and topic are required.");
        }

        byte[] payload;
        try
        {
            payload = body.PayloadBase64 is { } b64 ? Convert.FromBase64String(b64)
                : body.Payload is null ? []
                : Encoding.UTF8.GetBytes(body.Payload.ToJsonString());
        }
        catch (FormatException)
        {
            return Problems.BadRequest("InvalidRequestException", "payloadBase64 is not base64.");
        }

        var result = await grains.GetGrain<IRuleSqlGrain>(0).Test(new RuleTestRequest(body.Sql, body.Topic, payload, body.ClientId, body.Principal));
        if (result.Error is not null)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                title: "SqlParseException",
                detail: result.Error,
                extensions: new Dictionary<string, object?> { ["code"] = "SqlParseException", ["message"] = result.Error, ["position"] = result.ErrorPosition });
        }

        var response = new JsonObject { ["topicMatches"] = result.TopicMatches, ["selected"] = result.Selected };
        if (result.Output is { } output)
        {
            try
            {
                response["output"] = output.Length == 0 ? null : JsonNode.Parse(output);
            }
            catch (JsonException)
            {
                response["outputBase64"] = Convert.ToBase64String(output);
            }
        }

        return JsonText.Result(response);
    }
}
