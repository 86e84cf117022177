using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
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
        var rules = endpoints.MapGroup("/rules").WithTags("Rules").ChangedBy(ApiKeyRoles.Operator);
        rules.MapPost("/test", TestAsync).WithName("TestRuleSql").ReadOnly();
        rules.MapPost("/{ruleName}", CreateAsync).WithName("CreateTopicRule");
        rules.MapGet("/{ruleName}", GetAsync).WithName("GetTopicRule");
        rules.MapMethods("/{ruleName}", ["PATCH"], ReplaceAsync).WithName("ReplaceTopicRule");
        rules.MapPost("/{ruleName}/enable", EnableAsync).WithName("EnableTopicRule");
        rules.MapPost("/{ruleName}/disable", DisableAsync).WithName("DisableTopicRule");
        rules.MapDelete("/{ruleName}", DeleteAsync).WithName("DeleteTopicRule");
        rules.MapGet("", ListAsync).WithName("ListTopicRules");
        return endpoints;
    }

    /// <summary>AWS's <c>TopicRulePayload</c>: <c>sql</c> required; actions and errorAction kept as JSON for the rule grain to check.</summary>
    public sealed record TopicRulePayloadBody(string? Sql, string? Description, JsonNode? Actions, JsonNode? ErrorAction, bool? RuleDisabled, string? AwsIotSqlVersion);

    public sealed record ListTopicRulesRequest(string? Topic, bool? RuleDisabled);

    public sealed record TopicRuleDocument(
        string RuleName, string Sql, string? Description, long CreatedAt, JsonNode? Actions, bool RuleDisabled, string? AwsIotSqlVersion,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonNode? ErrorAction);

    public sealed record GetTopicRuleResponse(string RuleArn, TopicRuleDocument Rule);

    public sealed record TopicRuleSummary(string RuleArn, string RuleName, string? TopicPattern, long CreatedAt, bool RuleDisabled);

    public sealed record ListTopicRulesResponse(IReadOnlyList<TopicRuleSummary> Rules);

    private static async Task<Ok<EmptyResponse>> CreateAsync(string ruleName, TopicRulePayloadBody body, IGrainFactory grains, Telemetry.RuleTopics rules)
    {
        await grains.GetGrain<IRuleGrain>(ruleName).Create(Input(body));
        await rules.ChangedAsync();
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> ReplaceAsync(string ruleName, TopicRulePayloadBody body, IGrainFactory grains, Telemetry.RuleTopics rules)
    {
        await grains.GetGrain<IRuleGrain>(ruleName).Replace(Input(body));
        await rules.ChangedAsync();
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<GetTopicRuleResponse>> GetAsync(string ruleName, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var rule = await grains.GetGrain<IRuleGrain>(ruleName).Get() ?? throw ApiException.NotFound($"Rule {ruleName} cannot be found.");
        return TypedResults.Ok(new GetTopicRuleResponse(options.Value.Arn($"rule/{rule.RuleName}"), Document(rule)));
    }

    private static Task<Ok<EmptyResponse>> EnableAsync(string ruleName, IGrainFactory grains, Telemetry.RuleTopics rules) => SetEnabledAsync(ruleName, true, grains, rules);

    private static Task<Ok<EmptyResponse>> DisableAsync(string ruleName, IGrainFactory grains, Telemetry.RuleTopics rules) => SetEnabledAsync(ruleName, false, grains, rules);

    private static async Task<Ok<EmptyResponse>> SetEnabledAsync(string ruleName, bool enabled, IGrainFactory grains, Telemetry.RuleTopics rules)
    {
        await grains.GetGrain<IRuleGrain>(ruleName).SetEnabled(enabled);
        await rules.ChangedAsync();
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DeleteAsync(string ruleName, IGrainFactory grains, Telemetry.RuleTopics rules)
    {
        await grains.GetGrain<IRuleGrain>(ruleName).Delete();
        await rules.ChangedAsync();
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<ListTopicRulesResponse>> ListAsync([AsParameters] ListTopicRulesRequest request, IGrainFactory grains, IOptions<RegistryOptions> options)
    {
        var set = await grains.GetGrain<IRuleCatalogGrain>(IRuleCatalogGrain.Key).Get();
        return TypedResults.Ok(new ListTopicRulesResponse([.. set.Rules
            .Where(r => (request.Topic is null || r.TopicPattern == request.Topic) && (request.RuleDisabled is null || r.RuleDisabled == request.RuleDisabled))
            .Select(r => new TopicRuleSummary(options.Value.Arn($"rule/{r.RuleName}"), r.RuleName, r.TopicPattern, r.CreatedAt.ToUnixTimeSeconds(), r.RuleDisabled))]));
    }

    private static TopicRuleDocument Document(TopicRule rule) => new(
        rule.RuleName, rule.Sql, rule.Description, rule.CreatedAt.ToUnixTimeSeconds(), JsonNode.Parse(rule.ActionsJson), rule.RuleDisabled, rule.AwsIotSqlVersion,
        rule.ErrorActionJson is { } error ? JsonNode.Parse(error) : null);

    private static TopicRuleInput Input(TopicRulePayloadBody body) => new(
        body.Sql ?? throw ApiException.Invalid("sql is required."),
        body.Description,
        (body.Actions ?? new JsonArray()).ToJsonString(),
        body.ErrorAction?.ToJsonString(),
        body.RuleDisabled == true,
        body.AwsIotSqlVersion);

    /// <summary>
    /// <c>{"sql", "topic", "payload" (any JSON value) | "payloadBase64", "clientId", "principal"}</c> →
    /// <c>{"topicMatches", "selected", "output" (JSON) | "outputBase64" (bytes that are not JSON)}</c>; a syntax error is a
    /// 400 problem with the position.
    /// </summary>
    public sealed record TestBody(string? Sql, string? Topic, JsonNode? Payload, string? PayloadBase64, string? ClientId, string? Principal);

    /// <summary>What the rule made of the sample: <c>output</c> when it is JSON, <c>outputBase64</c> when it is not.</summary>
    public sealed record TestResponse(
        bool TopicMatches,
        bool Selected,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] JsonNode? Output,
        [property: JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)] string? OutputBase64);

    private static async Task<Ok<TestResponse>> TestAsync(TestBody body, IGrainFactory grains)
    {
        if (string.IsNullOrWhiteSpace(body.Sql) || string.IsNullOrEmpty(body.Topic))
        {
            throw ApiException.Invalid("sql and topic are required.");
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
            throw ApiException.Invalid("payloadBase64 is not base64.");
        }

        var result = await grains.GetGrain<IRuleSqlGrain>(0).Test(new RuleTestRequest(body.Sql, body.Topic, payload, body.ClientId, body.Principal));
        if (result.Error is not null)
        {
            throw new SqlParseFailedException(result.Error, result.ErrorPosition);
        }

        if (result.Output is not { Length: > 0 } output)
        {
            return TypedResults.Ok(new TestResponse(result.TopicMatches, result.Selected, null, null));
        }

        try
        {
            return TypedResults.Ok(new TestResponse(result.TopicMatches, result.Selected, JsonNode.Parse(output), null));
        }
        catch (JsonException)
        {
            return TypedResults.Ok(new TestResponse(result.TopicMatches, result.Selected, null, Convert.ToBase64String(output)));
        }
    }
}

/// <summary>Rule SQL that does not parse: 400 <c>SqlParseException</c> with the position of the fault (problem field <c>position</c>).</summary>
public sealed class SqlParseFailedException(string message, int? position) : Exception(message)
{
    public int? Position { get; } = position;
}
