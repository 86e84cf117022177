namespace OrleansIot.Grains.Abstractions;

/// <summary>
/// Grain references for the hot paths, without Orleans' per-call reflection: <c>GetGrain&lt;T&gt;(key)</c> resolves the
/// interface's grain interface type anew on every call (Orleans' <c>GrainInterfaceTypeResolver</c> reads the interface's
/// attributes and formats its name, uncached), which was 3.5 % of a node's CPU while devices connected. Here it is
/// resolved once per interface, from the first reference; the references are the same as <c>GetGrain&lt;T&gt;</c>'s.
/// Only the types are cached (they are the same for every silo); a reference always comes from the caller's factory.
/// </summary>
public static class GrainReferences
{
    /// <summary>The grain of <typeparamref name="T"/> with this string key.</summary>
    public static T Reference<T>(this IGrainFactory grains, string key) where T : IGrainWithStringKey =>
        Resolved<T>.Types is { } types
            ? (T)grains.GetGrain(GrainId.Create(types.Grain, key), types.Interface)
            : Resolved<T>.From(grains.GetGrain<T>(key));

    /// <summary>The grain of <typeparamref name="T"/> with this integer key.</summary>
    public static T Reference<T>(this IGrainFactory grains, long key) where T : IGrainWithIntegerKey =>
        Resolved<T>.Types is { } types
            ? (T)grains.GetGrain(GrainId.Create(types.Grain, GrainIdKeyExtensions.CreateIntegerKey(key)), types.Interface)
            : Resolved<T>.From(grains.GetGrain<T>(key));

    private static class Resolved<T>
    {
        // A class, so that a reader on another thread sees both types or neither.
        public static GrainTypes? Types;

        public static T From(T first)
        {
            var reference = (GrainReference)(object)first!;
            Types = new GrainTypes(reference.GrainId.Type, reference.InterfaceType);
            return first;
        }
    }

    private sealed record GrainTypes(GrainType Grain, GrainInterfaceType Interface);
}
