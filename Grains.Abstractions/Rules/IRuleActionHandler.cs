namespace OrleansIot.Grains.Abstractions.Rules;

/// <summary>
/// Backend business logic for rules, in C# (our Lambda): a grain implementing this, named by its grain type in a
/// rule's <c>grain</c> action (<c>{"grain": {"grainType": "billing-handler", "key": "${topic(2)}"}}</c>), is called
/// with each output of the rule. A thrown exception fails the action (the rule's error action runs).
/// </summary>
[Alias("OrleansIot.IRuleActionHandler")]
public interface IRuleActionHandler : IGrainWithStringKey
{
    /// <summary>Handles one output of a rule.</summary>
    [Alias("Handle")]
    Task Handle(RuleActionMessage message);
}

/// <summary>What a handler grain gets: the rule, the message it came from, and the rule's output (JSON, or the bytes of a non-JSON <c>SELECT *</c>).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.RuleActionMessage")]
public sealed record RuleActionMessage(
    [property: Id(0)] string RuleName,
    [property: Id(1)] string Topic,
    [property: Id(2)] string? ClientId,
    [property: Id(3)] byte[] Output,
    [property: Id(4)] long TimestampMs);
