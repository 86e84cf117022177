using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Things;

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

/// <summary>ListPolicies and GetEffectivePolicies on any node.</summary>
[GrainType("policy-query"), Orleans.Concurrency.StatelessWorker]
internal sealed class PolicyQueryGrain(Microsoft.Extensions.Options.IOptions<Abstractions.Registry.RegistryOptions> registry) : Grain, IPolicyQueryGrain
{
    public Task<(IReadOnlyList<string> Names, string? NextMarker)> List(string? marker, int pageSize) =>
        GrainFactory.GetGrain<Catalogs.INameCatalogGrain>(Catalogs.INameCatalogGrain.Policies).Page(marker, pageSize);

    public async Task<IReadOnlyList<PolicyInfo>> Effective(string? principal, string? thingName)
    {
        var targets = new List<string>();
        if (principal is not null)
        {
            targets.Add(PolicyTargets.Canonical(principal, registry.Value));
        }

        if (thingName is not null)
        {
            // The thing's groups and every ancestor: a policy on a group applies to everything below it.
            var groups = await GrainFactory.GetGrain<IThingGrain>(thingName).ListThingGroups();
            foreach (var name in groups.SelectMany(g => g.Ancestors.Append(g.ThingGroupName)).Distinct(StringComparer.Ordinal))
            {
                targets.Add(registry.Value.Arn($"thinggroup/{name}"));
            }
        }

        var names = new List<string>();
        foreach (var target in targets)
        {
            names.AddRange(await GrainFactory.GetGrain<IPolicyTargetGrain>(target).List());
        }

        var policies = await Task.WhenAll(names.Distinct(StringComparer.Ordinal).Select(n => GrainFactory.GetGrain<IPolicyGrain>(n).Get()));
        return [.. policies.OfType<PolicyInfo>()];
    }
}
