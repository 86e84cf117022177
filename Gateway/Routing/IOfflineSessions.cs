using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>What routing needs from the persistent sessions this node hosts while their clients are away (<see cref="Sessions.SessionHost"/>).</summary>
internal interface IOfflineSessions
{
    /// <summary>
    /// Queues a message routed through this node for every offline session here that it matches, and (only when
    /// forwarded by another node (<paramref name="fromAnotherNode"/>), which may not have seen the move yet) for sessions that moved away.
    /// </summary>
    void MatchOffline(string topic, bool retain, Func<ForwardedMessage> message, bool fromAnotherNode);

    /// <summary>Queues a shared subscription's message for one offline member here; false when there is none.</summary>
    bool DivertShared(IReadOnlyList<(string ClientId, int Qos)> members, ForwardedMessage message);

    /// <summary>The directory lists gone nodes whose sessions nobody adopted yet.</summary>
    void OnOrphans(IReadOnlyList<string> orphans);

    /// <summary>Nodes went away: the connection directory partitions they held may have lost this node's live connections.</summary>
    void OnNodesGone();

    /// <summary>
    /// This node is stopping: waits (at most <paramref name="timeout"/>) until what its sessions hold has reached their
    /// grains. True when it all did, and nothing was dropped since the stop began.
    /// </summary>
    Task<bool> DrainAsync(TimeSpan timeout);
}
