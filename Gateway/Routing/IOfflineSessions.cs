using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>What routing needs from the persistent sessions this node hosts while their clients are away (<see cref="Sessions.SessionHost"/>).</summary>
internal interface IOfflineSessions
{
    /// <summary>Queues a message routed through this node for every offline session here that it matches.</summary>
    void MatchOffline(string topic, bool retain, Func<ForwardedMessage> message);

    /// <summary>Queues a shared subscription's message for one offline member here; false when there is none.</summary>
    bool DivertShared(IReadOnlyList<(string ClientId, int Qos)> members, ForwardedMessage message);

    /// <summary>The directory lists gone nodes whose sessions nobody adopted yet.</summary>
    void OnOrphans(IReadOnlyList<string> orphans);
}
