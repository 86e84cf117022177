using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Abstractions.Sessions;

/// <summary>
/// An MQTT client id across the cluster: which node holds its live connection. One connection per client id
/// cluster-wide: a new connection on any node takes over, and the node of the old one closes it.
/// </summary>
[Alias("OrleansIot.IClientSessionGrain")]
public interface IClientSessionGrain : IGrainWithStringKey
{
    /// <summary>Records a new live connection; returns the one it replaces (null when there was none).</summary>
    [Alias("Attach")]
    Task<ClientConnection?> Attach(ClientConnection connection);

    /// <summary>A connection ended; ignored unless it is still the current one.</summary>
    [Alias("Detach")]
    Task Detach(string sessionId);

    /// <summary>The live connection, if any.</summary>
    [Alias("GetConnection"), Orleans.Concurrency.ReadOnly]
    Task<ClientConnection?> GetConnection();
}

/// <summary>A live connection of a client id: its session, and the node (and that node's reference) holding it.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ClientConnection")]
public sealed record ClientConnection(
    [property: Id(0)] string SessionId,
    [property: Id(1)] RouteNodeEntry Node,
    [property: Id(2)] DateTimeOffset Since);
