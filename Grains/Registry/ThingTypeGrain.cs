using OrleansIot.Grains.Abstractions;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Registry;

/// <summary>A thing type: rules here, record in the registry store (so listing and "things of this type" are queries).</summary>
[GrainType("thing-type")]
internal sealed class ThingTypeGrain(IRegistryStore registry, IOptions<RegistryOptions> options, IBrokerPublisher broker, TimeProvider time) : Grain, IThingTypeGrain
{
    private string Name => this.GetPrimaryKeyString();

    private RegistryEvents Events => new(options.Value, broker, time);

    public async Task<ThingTypeRecord> Create(string? description, IReadOnlyList<string>? searchableAttributes)
    {
        RegistryRules.Name("Thing type", Name);
        RegistryRules.Description(description);
        var searchable = searchableAttributes ?? [];
        if (searchable.Count > RegistryRules.MaxSearchableAttributes)
        {
            throw ApiException.Invalid($"A thing type can have at most {RegistryRules.MaxSearchableAttributes} searchable attributes.");
        }

        RegistryRules.Attributes(searchable.ToDictionary(a => a, _ => "", StringComparer.Ordinal));
        if (await registry.GetThingTypeAsync(Name) is { } existing)
        {
            return existing.Description == description && existing.SearchableAttributes.SequenceEqual(searchable)
                ? existing
                : throw ApiException.AlreadyExists($"Thing type {Name} already exists with a different configuration.");
        }

        var type = new ThingTypeRecord(Name, Guid.NewGuid().ToString(), description, [.. searchable], false, null, time.GetUtcNow());
        if (!await registry.SaveThingTypeAsync(type, create: true))
        {
            throw ApiException.AlreadyExists($"Thing type {Name} already exists.");
        }

        Events.ThingType("CREATED", type);
        return type;
    }

    public Task<ThingTypeRecord?> Describe() => registry.GetThingTypeAsync(Name);

    public async Task<ThingTypeRecord> Deprecate(bool undo)
    {
        var existing = await registry.GetThingTypeAsync(Name) ?? throw ApiException.NotFound($"Thing type {Name} cannot be found.");
        var type = existing with { Deprecated = !undo, DeprecationDate = undo ? null : existing.DeprecationDate ?? time.GetUtcNow() };
        await registry.SaveThingTypeAsync(type, create: false);
        Events.ThingType("UPDATED", type);
        return type;
    }

    public async Task Delete()
    {
        var type = await registry.GetThingTypeAsync(Name) ?? throw ApiException.NotFound($"Thing type {Name} cannot be found.");
        var delay = options.Value.ThingTypeDeleteDelay;
        if (type.DeprecationDate is not { } deprecated)
        {
            throw ApiException.Invalid($"Thing type {Name} must be deprecated before it is deleted.");
        }

        if (time.GetUtcNow() - deprecated < delay)
        {
            throw ApiException.Invalid($"Thing type {Name} can be deleted {delay.TotalMinutes:0.#} minutes after it was deprecated.");
        }

        if (await registry.CountThingsOfTypeAsync(Name) is > 0 and var count)
        {
            throw ApiException.Invalid($"Thing type {Name} is still the type of {count} things.");
        }

        await registry.DeleteThingTypeAsync(Name);
        Events.ThingType("DELETED", type);
    }
}
