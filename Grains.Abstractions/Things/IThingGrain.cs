namespace OrleansIot.Grains.Abstractions.Things;

/// <summary>
/// A thing (device), keyed by thing name. For now a device's thing name is its MQTT client id.
/// The one place where a device's state changes, one call at a time.
/// </summary>
[Alias("OrleansIot.IThingGrain")]
public interface IThingGrain : IGrainWithStringKey
{
    /// <summary>
    /// A gateway accepted a connection for this thing. The newest session wins: a later
    /// <see cref="Disconnected"/> for an older session does not mark the thing disconnected.
    /// Returns the connection's AWS lifecycle <c>versionNumber</c>: it grows with every connection of the client id,
    /// and the connection's disconnect event carries the same number.
    /// </summary>
    [Alias("Connected")]
    Task<long> Connected(ConnectionOpened connection);

    /// <summary>A connection of this thing ended; carries the usage the gateway had not flushed yet.</summary>
    [Alias("Disconnected")]
    Task Disconnected(ConnectionClosed connection);

    /// <summary>
    /// Adds usage the gateway coalesced since its last flush. Counted in memory at once, persisted on a timer
    /// and on deactivation (see docs/architecture.md for what a crash can lose).
    /// </summary>
    [Alias("RecordUsage")]
    Task RecordUsage(UsageDelta delta);

    /// <summary>The thing's connectivity and usage; <c>null</c> when the thing is unknown (never connected).</summary>
    [Alias("GetStatus"), Orleans.Concurrency.ReadOnly]
    Task<ThingStatus?> GetStatus();
}
