using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Policies;

namespace OrleansIot.Grains.Policies;

/// <summary>The policies attached to one certificate or thing group (key: its ARN), persisted.</summary>
[GrainType("policy-target")]
internal sealed class PolicyTargetGrain(
    [PersistentState("attached", StorageNames.Default)] IPersistentState<PolicyTargetState> state) : Grain, IPolicyTargetGrain
{
    public async Task Add(string policyName, int limit)
    {
        if (state.State.Policies.Contains(policyName))
        {
            return;
        }

        if (state.State.Policies.Count >= limit)
        {
            throw ApiException.LimitExceeded($"{this.GetPrimaryKeyString()} already has {limit} policies attached.");
        }

        state.State.Policies.Add(policyName);
        await state.WriteStateAsync();
    }

    public async Task Remove(string policyName)
    {
        if (state.State.Policies.Remove(policyName))
        {
            await state.WriteStateAsync();
        }
    }

    public Task<IReadOnlyList<string>> List() => Task.FromResult<IReadOnlyList<string>>([.. state.State.Policies]);
}

[GenerateSerializer, Alias("OrleansIot.PolicyTargetState")]
public sealed class PolicyTargetState
{
    [Id(0)] public List<string> Policies { get; set; } = [];
}
