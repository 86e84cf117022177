using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Grains.Abstractions.Sessions;

/// <summary>
/// Connection ends kept for their things, one grain per connection directory partition (the same key). A node that
/// stops on purpose closes every connection it holds at once; recording each end on its thing there and then would
/// activate every thing of the node's fleet during the stop (19,000 activations and state writes made a graceful stop
/// twice as long). It keeps them here instead, stored in one write per batch, and this grain records them on the
/// things afterwards, a few at a time, from wherever it is activated (the nodes wake it when a silo leaves; a reminder
/// after a restart).
/// A thing records an end once: an end delivered again changes nothing.
/// </summary>
[Alias("OrleansIot.IConnectionEndsGrain")]
public interface IConnectionEndsGrain : IGrainWithIntegerKey
{
    /// <summary>Stores <paramref name="ends"/> (one state write for the batch); they reach their things later.</summary>
    [Alias("Keep")]
    Task Keep(IReadOnlyList<KeptEnd> ends);

    /// <summary>
    /// Activates the keeper, which goes on recording what it keeps (the nodes send it when a silo leaves). Not one-way:
    /// the caller bounds how many keepers activate (and read their state) at once.
    /// </summary>
    [Alias("Wake")]
    Task Wake();

    /// <summary>How many ends are kept and not yet recorded on their things.</summary>
    [Alias("Count"), Orleans.Concurrency.ReadOnly]
    Task<int> Count();
}

/// <summary>The end of a connection of <paramref name="ClientId"/>, waiting to be recorded on its thing.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.KeptEnd")]
public sealed record KeptEnd(
    [property: Id(0)] string ClientId,
    [property: Id(1)] ConnectionClosed Closed);

/// <summary>Which <see cref="IConnectionEndsGrain"/> keeps the ends of a client id.</summary>
public static class ConnectionEnds
{
    /// <summary>The grain keeping <paramref name="clientId"/>'s ends: the one of its connection directory partition.</summary>
    public static IConnectionEndsGrain ConnectionEndsOf(this IGrainFactory grains, string clientId) =>
        grains.Reference<IConnectionEndsGrain>(ConnectionDirectory.PartitionOf(clientId));
}
