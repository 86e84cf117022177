using OrleansIot.Grains.Abstractions.Registry;

namespace OrleansIot.Grains.Abstractions.Policies;

/// <summary>
/// What a gateway needs to authenticate and authorize a device's connection made with a client certificate: the
/// certificate's status and validity, its CA's status, the thing named by the client id (policy variables), whether
/// the certificate is attached to that thing, and the effective policies (the certificate's, and when attached, its
/// thing groups' and their ancestors').
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.DeviceGrant")]
public sealed record DeviceGrant(
    [property: Id(0)] string? Status,
    [property: Id(1)] string? CaCertificateId,
    [property: Id(2)] bool CaActive,
    [property: Id(3)] DateTimeOffset NotBefore,
    [property: Id(4)] DateTimeOffset NotAfter,
    [property: Id(5)] ThingRecord? Thing,
    [property: Id(6)] bool IsAttached,
    [property: Id(7)] IReadOnlyList<PolicyInfo> Policies)
{
    /// <summary>The answer for a certificate nobody registered.</summary>
    public static DeviceGrant Unknown { get; } = new(null, null, false, default, default, null, false, []);
}

/// <summary>Resolves device grants on any node (a stateless worker next to the gateway asking).</summary>
[Alias("OrleansIot.IAccessGrain")]
public interface IAccessGrain : IGrainWithIntegerKey
{
    /// <summary>The grant of a connection by the certificate <paramref name="certificateId"/> with client id <paramref name="clientId"/>.</summary>
    [Alias("Resolve")]
    Task<DeviceGrant> Resolve(string certificateId, string clientId);
}

/// <summary>What changed in the identity and access data, for the nodes to re-check live connections.</summary>
public enum AccessChangeKind
{
    /// <summary>A certificate's status, or its things, changed (or it was deleted): <see cref="AccessChange.Name"/> is its id.</summary>
    Certificate,

    /// <summary>A registered CA's status changed: <see cref="AccessChange.Name"/> is its id.</summary>
    CaCertificate,

    /// <summary>
    /// A policy's default version changed (<see cref="AccessChange.Name"/>: the policy; connections holding it are
    /// affected), or a thing group's attachments did (no name: every connection may be).
    /// </summary>
    Policy,

    /// <summary>A thing's attributes, type or groups changed: <see cref="AccessChange.Name"/> is the thing.</summary>
    Thing,

    /// <summary>An API key was deleted: <see cref="AccessChange.Name"/> is its id.</summary>
    ApiKey,
}

/// <summary>One change; nodes re-resolve the grants of the connections it touches.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.AccessChange")]
public sealed record AccessChange(
    [property: Id(0)] AccessChangeKind Kind,
    [property: Id(1)] string? Name);

/// <summary>
/// Tells every gateway node of the cluster that identity or access data changed (implemented by the gateway; grains
/// call it after storing the change). Nodes close the live connections of a certificate that is no longer ACTIVE and
/// re-read the policies of the others.
/// </summary>
public interface IAccessChangeNotifier
{
    /// <summary>Completes when the live nodes have the change (bounded by the broadcast timeout).</summary>
    Task Changed(AccessChange change);
}
