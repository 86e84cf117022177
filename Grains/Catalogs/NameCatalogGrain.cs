namespace OrleansIot.Grains.Catalogs;

/// <summary>
/// A persisted set of names for AWS's List calls with a marker: one per kind of resource (key: <see cref="Policies"/>,
/// <see cref="Certificates"/> …) or per owner (<see cref="ThingPrincipals"/>). Fine for sets that are small and change
/// rarely; things and shadows have their own stores.
/// </summary>
[Alias("OrleansIot.INameCatalogGrain")]
internal interface INameCatalogGrain : IGrainWithStringKey
{
    public const string Policies = "policies";
    public const string Certificates = "certificates";
    public const string CaCertificates = "ca-certificates";
    public const string ProvisioningTemplates = "provisioning-templates";

    /// <summary>The key of the set of certificate ids attached to a thing (<c>ListThingPrincipals</c>).</summary>
    public static string ThingPrincipals(string thingName) => "thing-principals/" + thingName;

    [Alias("Add")]
    Task Add(string name);

    [Alias("Remove")]
    Task Remove(string name);

    /// <summary>Names after <paramref name="marker"/> in ordinal order, at most <paramref name="pageSize"/>, and the marker of the next page.</summary>
    [Alias("Page"), Orleans.Concurrency.ReadOnly]
    Task<(IReadOnlyList<string> Names, string? NextMarker)> Page(string? marker, int pageSize);
}

[GrainType("name-catalog")]
internal sealed class NameCatalogGrain(
    [PersistentState("names", Abstractions.StorageNames.Default)] IPersistentState<NameCatalogState> state) : Grain, INameCatalogGrain
{
    public async Task Add(string name)
    {
        if (state.State.Names.Add(name))
        {
            await state.WriteStateAsync();
        }
    }

    public async Task Remove(string name)
    {
        if (state.State.Names.Remove(name))
        {
            await state.WriteStateAsync();
        }
    }

    public Task<(IReadOnlyList<string> Names, string? NextMarker)> Page(string? marker, int pageSize)
    {
        var after = state.State.Names.Where(n => marker is null || string.CompareOrdinal(n, marker) > 0).Order(StringComparer.Ordinal).Take(pageSize + 1).ToList();
        return Task.FromResult<(IReadOnlyList<string>, string?)>(after.Count > pageSize ? (after[..pageSize], after[pageSize - 1]) : (after, null));
    }
}

[GenerateSerializer, Alias("OrleansIot.NameCatalogState")]
public sealed class NameCatalogState
{
    [Id(0)] public HashSet<string> Names { get; set; } = [];
}
