using System.Text.Json;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Rules;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Grains.Rules;

/// <summary>
/// A topic rule: validates SQL (parsed and compiled once here to refuse bad SQL early; the evaluators compile their
/// own copy) and actions, stores the rule, and updates the catalog the evaluators read.
/// </summary>
[GrainType("rule")]
internal sealed class RuleGrain(
    [PersistentState("rule", StorageNames.Default)] IPersistentState<RuleState> state,
    TimeProvider time) : Grain, IRuleGrain
{
    public const int MaxActions = 10;
    public const string SqlVersion = "2016-03-23";

    private string Name => this.GetPrimaryKeyString();

    private IRuleCatalogGrain Catalog => GrainFactory.GetGrain<IRuleCatalogGrain>(IRuleCatalogGrain.Key);

    public async Task<TopicRule> Create(TopicRuleInput input)
    {
        if (state.State.Rule is not null)
        {
            throw new ApiException(409, "ResourceAlreadyExistsException", $"Rule {Name} already exists.");
        }

        return await SaveAsync(Validate(input, time.GetUtcNow()));
    }

    public async Task<TopicRule> Replace(TopicRuleInput input)
    {
        var existing = state.State.Rule ?? throw ApiException.NotFound($"Rule {Name} cannot be found.");
        return await SaveAsync(Validate(input, existing.CreatedAt));
    }

    public Task<TopicRule?> Get() => Task.FromResult(state.State.Rule);

    public async Task SetEnabled(bool enabled)
    {
        var existing = state.State.Rule ?? throw ApiException.NotFound($"Rule {Name} cannot be found.");
        await SaveAsync(existing with { RuleDisabled = !enabled });
    }

    public async Task Delete()
    {
        if (state.State.Rule is null)
        {
            return;
        }

        state.State.Rule = null;
        await state.ClearStateAsync();
        await Catalog.Remove(Name);
    }

    private async Task<TopicRule> SaveAsync(TopicRule rule)
    {
        state.State.Rule = rule;
        await state.WriteStateAsync();
        await Catalog.Put(rule);
        return rule;
    }

    private TopicRule Validate(TopicRuleInput input, DateTimeOffset createdAt)
    {
        if (Name.Length is 0 or > 128 || !Name.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
        {
            throw ApiException.Invalid($"Rule name '{Name}' is invalid: 1 to 128 characters of a-z, A-Z, 0-9 and '_'.");
        }

        if (input.AwsIotSqlVersion is { } version && version != SqlVersion)
        {
            throw ApiException.Invalid($"awsIotSqlVersion {version} is not supported; use {SqlVersion}.");
        }

        SqlStatement statement;
        try
        {
            statement = SqlStatement.Parse(input.Sql);
        }
        catch (SqlSyntaxException ex)
        {
            throw new ApiException(400, "SqlParseException", ex.Message);
        }

        var actions = ParseActions(input.ActionsJson, "actions");
        if (actions.Count > MaxActions)
        {
            throw ApiException.Invalid($"A rule can have at most {MaxActions} actions.");
        }

        foreach (var action in actions)
        {
            RuleActions.Validate(action);
        }

        if (input.ErrorActionJson is { } errorJson)
        {
            RuleActions.Validate(ParseObject(errorJson, "errorAction"));
        }

        return new TopicRule(Name, input.Sql, input.Description, input.ActionsJson, input.ErrorActionJson, input.RuleDisabled, SqlVersion, createdAt, statement.TopicFilter);
    }

    internal static List<JsonObject> ParseActions(string json, string what)
    {
        try
        {
            return JsonNode.Parse(json) is JsonArray array && array.All(a => a is JsonObject)
                ? [.. array.Cast<JsonObject>()]
                : throw ApiException.Invalid($"{what} must be an array of action objects.");
        }
        catch (JsonException)
        {
            throw ApiException.Invalid($"{what} is not valid JSON.");
        }
    }

    internal static JsonObject ParseObject(string json, string what)
    {
        try
        {
            return JsonNode.Parse(json) as JsonObject ?? throw ApiException.Invalid($"{what} must be an action object.");
        }
        catch (JsonException)
        {
            throw ApiException.Invalid($"{what} is not valid JSON.");
        }
    }
}

[GenerateSerializer, Alias("OrleansIot.RuleState")]
public sealed class RuleState
{
    [Id(0)] public TopicRule? Rule { get; set; }
}
