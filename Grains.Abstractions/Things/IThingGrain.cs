using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Shadows;

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

    /// <summary>
    /// The thing's usage per UTC day from <paramref name="from"/> to <paramref name="to"/> (inclusive; days without
    /// usage included as zeros), the connection still open counted up to now. Days older than
    /// <c>Iot:Things:UsageRetentionDays</c> are gone.
    /// </summary>
    [Alias("GetDailyUsage"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<DailyUsage>> GetDailyUsage(DateOnly from, DateOnly to);

    /// <summary>
    /// AWS <c>GetThingShadow</c> / <c>/get</c>: the full document (desired, reported, delta, metadata, version), or
    /// 404 <c>No shadow exists with name: …</c>. The payload may carry a <c>clientToken</c>.
    /// </summary>
    [Alias("GetShadow")]
    Task<ShadowResponse> GetShadow(ShadowRequest request);

    /// <summary>
    /// The full document of a shadow (as <see cref="GetShadow"/> answers) or <c>null</c> when there is none, for the
    /// platform's own readers (the rules' <c>get_thing_shadow</c>): not a device request, so no request limit and
    /// nothing published.
    /// </summary>
    [Alias("ReadShadow"), Orleans.Concurrency.ReadOnly]
    Task<byte[]?> ReadShadow(string shadowName);

    /// <summary>
    /// AWS <c>UpdateThingShadow</c> / <c>/update</c>: merges the request's <c>state.desired</c> and <c>state.reported</c>,
    /// persists the shadow (durably in PostgreSQL mode) and only then publishes <c>/update/accepted</c>,
    /// <c>/update/documents</c> and, while desired and reported differ, <c>/update/delta</c>. A request repeated with
    /// the same <c>clientToken</c> and payload within the configured window gets the first outcome again and changes
    /// nothing (also after deactivation or a node's death).
    /// </summary>
    [Alias("UpdateShadow")]
    Task<ShadowResponse> UpdateShadow(ShadowRequest request);

    /// <summary>
    /// AWS <c>DeleteThingShadow</c> / <c>/delete</c>: removes the document; the version sequence continues if the
    /// shadow is created again within 48 hours.
    /// </summary>
    [Alias("DeleteShadow")]
    Task<ShadowResponse> DeleteShadow(ShadowRequest request);

    /// <summary>AWS <c>ListNamedShadowsForThing</c>: the thing's named shadows, a page at a time (1..100).</summary>
    [Alias("ListNamedShadows")]
    Task<NamedShadowPage> ListNamedShadows(string? nextToken, int pageSize);

    /// <summary>
    /// For backend services: waits until the shadow's version is greater than <paramref name="afterVersion"/> (or
    /// the shadow is deleted) and returns the document as <see cref="GetShadow"/> would; 404 when it does not exist,
    /// 408 with the current document when <paramref name="timeout"/> passes first (at most 5 minutes).
    /// </summary>
    [Alias("WaitForShadowChange"), Orleans.Concurrency.AlwaysInterleave]
    Task<ShadowResponse> WaitForShadowChange(string? shadowName, long afterVersion, TimeSpan timeout);

    /// <summary>
    /// AWS <c>CreateThing</c>: registers the thing (the same request again returns it; a different type or attributes
    /// is <c>ResourceAlreadyExistsException</c>). Failures are <see cref="ApiException"/>s with AWS's names.
    /// </summary>
    [Alias("CreateThing")]
    Task<ThingRecord> CreateThing(string? thingTypeName, IReadOnlyDictionary<string, string>? attributes);

    /// <summary>AWS <c>DescribeThing</c>: the registry record, or <c>null</c> when the thing is not registered.</summary>
    [Alias("DescribeThing")]
    Task<ThingRecord?> DescribeThing();

    /// <summary>AWS <c>UpdateThing</c>: type and attributes, version +1; <c>VersionConflictException</c> on a stale expected version.</summary>
    [Alias("UpdateThing")]
    Task<ThingRecord> UpdateThing(ThingUpdate update);

    /// <summary>AWS <c>DeleteThing</c>: removes the record and its group memberships (not its shadows); a missing thing is fine.</summary>
    [Alias("DeleteThing")]
    Task DeleteThing(long? expectedVersion);

    /// <summary>AWS <c>AddThingToThingGroup</c>: at most 10 groups per thing, one per hierarchy.</summary>
    [Alias("AddToThingGroup")]
    Task AddToThingGroup(string thingGroupName);

    /// <summary>AWS <c>RemoveThingFromThingGroup</c>.</summary>
    [Alias("RemoveFromThingGroup")]
    Task RemoveFromThingGroup(string thingGroupName);

    /// <summary>AWS <c>ListThingGroupsForThing</c>: the groups the thing is directly in.</summary>
    [Alias("ListThingGroups")]
    Task<IReadOnlyList<ThingGroupRecord>> ListThingGroups();

    /// <summary>
    /// Writes the thing's fleet-index entry again from its sources of truth (registry, shadows, connectivity) with the
    /// current indexing configuration, or removes it when the thing is not registered. Rebuilds call it.
    /// </summary>
    [Alias("Reindex")]
    Task Reindex();

    /// <summary>Joins or leaves the dynamic group as its query matches the thing now (the group's creation and changes call it).</summary>
    [Alias("SyncDynamicGroup")]
    Task SyncDynamicGroup(FleetIndex.DynamicGroupQuery group);

    /// <summary>A group the thing was in was deleted: its index entry, access and continuous jobs follow.</summary>
    [Alias("GroupDeleted")]
    Task GroupDeleted(ThingGroupRecord group);
}
