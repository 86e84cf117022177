using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Grains.Policies;

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
