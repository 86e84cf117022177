using System.Text.Json;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Rules;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Grains.Rules;

/// <summary>The catalog of rules: one persisted dictionary and a version (see <see cref="IRuleCatalogGrain"/>).</summary>
[GrainType("rule-catalog")]
internal sealed class RuleCatalogGrain(
    [PersistentState("rules", StorageNames.Default)] IPersistentState<RuleCatalogState> state) : Grain, IRuleCatalogGrain
{
    public Task<long> Version() => Task.FromResult(state.State.Version);

    public Task<RuleSet> Get() => Task.FromResult(new RuleSet(state.State.Version, [.. state.State.Rules.Values.OrderBy(r => r.RuleName, StringComparer.Ordinal)]));

    public async Task Put(TopicRule rule)
    {
        state.State.Rules[rule.RuleName] = rule;
        state.State.Version++;
        await state.WriteStateAsync();
    }

    public async Task Remove(string ruleName)
    {
        if (state.State.Rules.Remove(ruleName))
        {
            state.State.Version++;
            await state.WriteStateAsync();
        }
    }
}

[GenerateSerializer, Alias("OrleansIot.RuleCatalogState")]
public sealed class RuleCatalogState
{
    [Id(0)] public long Version { get; set; }
    [Id(1)] public Dictionary<string, TopicRule> Rules { get; set; } = new(StringComparer.Ordinal);
}
