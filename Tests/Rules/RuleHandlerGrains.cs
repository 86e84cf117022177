using System.Collections.Concurrent;
using OrleansIot.Grains.Abstractions.Rules;

namespace OrleansIot.Tests.Rules;

/// <summary>A backend handler as a user would write one: records what it was given, per key.</summary>
[GrainType("test-rule-handler")]
public sealed class RecordingRuleHandlerGrain : Grain, IRuleActionHandler
{
    public static ConcurrentDictionary<string, ConcurrentQueue<RuleActionMessage>> Handled { get; } = new();

    public Task Handle(RuleActionMessage message)
    {
        Handled.GetOrAdd(this.GetPrimaryKeyString(), _ => new ConcurrentQueue<RuleActionMessage>()).Enqueue(message);
        return Task.CompletedTask;
    }
}

/// <summary>A handler whose business rule refuses the message.</summary>
[GrainType("test-refusing-handler")]
public sealed class RefusingRuleHandlerGrain : Grain, IRuleActionHandler
{
    public Task Handle(RuleActionMessage message) => throw new InvalidOperationException("credit limit reached");
}
