using Microsoft.Extensions.DependencyInjection;
using Orleans.Storage;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Grains.Shadows;

/// <summary>A shadow as stored: one row per thing and shadow name (<c>""</c> for the classic shadow).</summary>
/// <param name="Document"><c>{"state":{…},"metadata":{…},"timestamp":T}</c>, or <c>null</c> while the shadow does not exist.</param>
/// <param name="DeletedAtUnixMs">When it was deleted (its version sequence is kept for a while).</param>
/// <param name="Remembered">JSON array of recent accepted updates by client token.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.StoredShadow")]
public sealed record StoredShadow(
    [property: Id(0)] string ThingName,
    [property: Id(1)] string ShadowName,
    [property: Id(2)] long Version,
    [property: Id(3)] long Revision,
    [property: Id(4)] string? Document,
    [property: Id(5)] long? DeletedAtUnixMs,
    [property: Id(6)] string? Remembered);

/// <summary>
/// Where thing grains keep shadows. A write names the revision it replaces (<see cref="StoredShadow.Revision"/> − 1)
/// and is refused when the stored one differs, so two activations of a thing (possible for moments around a node's
/// death) can never both advance a version: versions stay strictly monotonic.
/// </summary>
public interface IShadowStore
{
    /// <summary>Every shadow row of a thing (deleted ones included, for their version).</summary>
    Task<IReadOnlyList<StoredShadow>> LoadAsync(string thingName, CancellationToken cancellationToken);

    /// <summary>Writes the shadow if the stored revision is <c>Revision − 1</c> (or there is no row and Revision is 1); false otherwise.</summary>
    Task<bool> SaveAsync(StoredShadow shadow, CancellationToken cancellationToken);
}

/// <summary>
/// The embedded default: shadows in the grain storage the silo has (memory storage: the cluster's memory, shared by
/// every silo like all embedded state, lost when the cluster stops). One stored object per thing; the ETag of the
/// storage and the revision check make a write conditional, as in PostgreSQL mode.
/// </summary>
public sealed class GrainStorageShadowStore(IServiceProvider services) : IShadowStore
{
    private const string StateName = "shadows";

    private IGrainStorage Storage => services.GetRequiredKeyedService<IGrainStorage>(StorageNames.Default);

    public async Task<IReadOnlyList<StoredShadow>> LoadAsync(string thingName, CancellationToken cancellationToken)
    {
        var state = new GrainState<StoredShadows>(new StoredShadows());
        await Storage.ReadStateAsync(StateName, Id(thingName), state);
        return state.State is { } shadows ? [.. shadows.Rows.Values] : [];
    }

    public async Task<bool> SaveAsync(StoredShadow shadow, CancellationToken cancellationToken)
    {
        var state = new GrainState<StoredShadows>(new StoredShadows());
        await Storage.ReadStateAsync(StateName, Id(shadow.ThingName), state);
        state.State ??= new StoredShadows();
        var stored = state.State.Rows.TryGetValue(shadow.ShadowName, out var row) ? row.Revision : 0;
        if (stored != shadow.Revision - 1)
        {
            return false;
        }

        state.State.Rows[shadow.ShadowName] = shadow;
        try
        {
            await Storage.WriteStateAsync(StateName, Id(shadow.ThingName), state);
            return true;
        }
        catch (InconsistentStateException)
        {
            return false;
        }
    }

    private static GrainId Id(string thingName) => GrainId.Create("iot-shadows", thingName);
}

/// <summary>A thing's shadows as one stored object (embedded mode).</summary>
[GenerateSerializer, Alias("OrleansIot.StoredShadows")]
public sealed class StoredShadows
{
    [Id(0)] public Dictionary<string, StoredShadow> Rows { get; set; } = new(StringComparer.Ordinal);
}
