namespace OrleansIot.Grains.Abstractions.Rules;

/// <summary>
/// AWS <c>TopicRulePayload</c> as a rule is created or replaced: the SQL, the actions and the error action as AWS's
/// JSON (<c>[{"republish": {"topic": "…", "qos": 1}}]</c>), kept as text so action types can grow without new contracts.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.TopicRuleInput")]
public sealed record TopicRuleInput(
    [property: Id(0)] string Sql,
    [property: Id(1)] string? Description,
    [property: Id(2)] string ActionsJson,
    [property: Id(3)] string? ErrorActionJson,
    [property: Id(4)] bool RuleDisabled,
    [property: Id(5)] string? AwsIotSqlVersion);

/// <summary>A stored rule (AWS <c>GetTopicRule</c>'s <c>rule</c>), with a version that grows with every change.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.TopicRule")]
public sealed record TopicRule(
    [property: Id(0)] string RuleName,
    [property: Id(1)] string Sql,
    [property: Id(2)] string? Description,
    [property: Id(3)] string ActionsJson,
    [property: Id(4)] string? ErrorActionJson,
    [property: Id(5)] bool RuleDisabled,
    [property: Id(6)] string AwsIotSqlVersion,
    [property: Id(7)] DateTimeOffset CreatedAt,
    [property: Id(8)] string? TopicPattern);

/// <summary>Every rule, as the evaluators load it; <see cref="Version"/> grows with every change of any rule.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.RuleSet")]
public sealed record RuleSet(
    [property: Id(0)] long Version,
    [property: Id(1)] IReadOnlyList<TopicRule> Rules);

/// <summary>A topic rule, keyed by its name (AWS <c>CreateTopicRule</c>, <c>GetTopicRule</c>, <c>ReplaceTopicRule</c>, …).</summary>
[Alias("OrleansIot.IRuleGrain")]
public interface IRuleGrain : IGrainWithStringKey
{
    /// <summary>Creates the rule; <c>ResourceAlreadyExistsException</c> if it exists, <c>SqlParseException</c> for bad SQL.</summary>
    [Alias("Create")]
    Task<TopicRule> Create(TopicRuleInput input);

    /// <summary>Replaces SQL, actions and the rest (AWS <c>ReplaceTopicRule</c>).</summary>
    [Alias("Replace")]
    Task<TopicRule> Replace(TopicRuleInput input);

    /// <summary>The rule, or <c>null</c>.</summary>
    [Alias("Get")]
    Task<TopicRule?> Get();

    /// <summary>AWS <c>EnableTopicRule</c> / <c>DisableTopicRule</c>.</summary>
    [Alias("SetEnabled")]
    Task SetEnabled(bool enabled);

    /// <summary>AWS <c>DeleteTopicRule</c>; a missing rule is fine.</summary>
    [Alias("Delete")]
    Task Delete();
}

/// <summary>
/// The cluster's rule set (one grain, key <see cref="Key"/>): the rule grains write it, the evaluators read it when its
/// version changed. Never on the message path: evaluators compare versions at most once per refresh interval.
/// </summary>
[Alias("OrleansIot.IRuleCatalogGrain")]
public interface IRuleCatalogGrain : IGrainWithStringKey
{
    /// <summary>The one catalog's key.</summary>
    public const string Key = "rules";

    /// <summary>The current version.</summary>
    [Alias("Version"), Orleans.Concurrency.AlwaysInterleave]
    Task<long> Version();

    /// <summary>Every rule.</summary>
    [Alias("Get"), Orleans.Concurrency.ReadOnly]
    Task<RuleSet> Get();

    /// <summary>Adds or replaces a rule.</summary>
    [Alias("Put")]
    Task Put(TopicRule rule);

    /// <summary>Removes a rule.</summary>
    [Alias("Remove")]
    Task Remove(string ruleName);
}
