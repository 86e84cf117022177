using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Gateway.Routing;

/// <summary>Cluster-wide routing between gateway nodes (section <c>Iot:Routing</c>).</summary>
public sealed class RoutingOptions
{
    public const string SectionName = "Iot:Routing";

    /// <summary>How often a node renews its lease in the node directory and learns of new nodes.</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How often a node reports its connections and message counts for the cluster view (<c>GET /api/nodes</c>).</summary>
    [Range(typeof(TimeSpan), "00:00:00.100", "00:10:00")]
    public TimeSpan StatsInterval { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>How long a route change may take to reach the other nodes before SUBACK goes out anyway.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan BroadcastTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Messages waiting to be forwarded to one other node before new ones are dropped (counted, logged).</summary>
    [Range(1, 10_000_000)]
    public int ForwardQueueCapacity { get; set; } = 100_000;

    /// <summary>
    /// How long a node keeps the QoS 1/2 messages it forwarded to another node, to replay them to that node's persistent
    /// sessions if it dies: what it had received but not yet delivered (and had acknowledged) dies with it. Covers
    /// subscribers whose queues drain within it; longer means more duplicates after a death, never fewer messages.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan ReplayWindow { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>At most this many forwarded messages are kept per node for replay (the oldest go first).</summary>
    [Range(0, 10_000_000)]
    public int ReplayCapacity { get; set; } = 100_000;

    /// <summary>Most messages in one node-to-node call.</summary>
    [Range(1, 10_000)]
    public int MaxBatchSize { get; set; } = 256;

    /// <summary>Topic watches (<c>GET /api/watch</c>, the console's live views) one node serves at once.</summary>
    [Range(0, 10_000)]
    public int MaxTopicWatches { get; set; } = 32;

    /// <summary>Messages waiting for one watcher before newer ones are dropped for it (it is told how many).</summary>
    [Range(1, 1_000_000)]
    public int TopicWatchQueue { get; set; } = 1_000;
}
