using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>Protocol limits (section <c>Iot:Limits</c>); the defaults are AWS IoT Core's.</summary>
public sealed class LimitsOptions
{
    public const string SectionName = "Iot:Limits";

    /// <summary>Longest client id, UTF-8 bytes (AWS: 128).</summary>
    [Range(1, 65535)]
    public int MaxClientIdBytes { get; set; } = 128;

    /// <summary>Largest PUBLISH payload in bytes (AWS: 128 KB).</summary>
    [Range(1, 256 * 1024 * 1024)]
    public int MaxPayloadBytes { get; set; } = 128 * 1024;

    /// <summary>Longest topic (publish) or topic filter (subscribe), UTF-8 bytes (AWS: 256).</summary>
    [Range(1, 65535)]
    public int MaxTopicBytes { get; set; } = 256;

    /// <summary>Most topic levels, i.e. slashes + 1 (AWS: 7 slashes, 8 levels). '$aws/...' topics are the platform's and exempt.</summary>
    [Range(1, 1000)]
    public int MaxTopicLevels { get; set; } = 8;

    /// <summary>
    /// Most PUBLISH packets one connection may send per second (AWS: 100; 0: no limit). The excess is discarded:
    /// MQTT 5 gets PUBACK 0x97 (quota exceeded), MQTT 3.1.1 has no negative PUBACK.
    /// </summary>
    [Range(0, 10_000_000)]
    public int MaxPublishesPerSecond { get; set; } = 100;

    /// <summary>Most payload bytes one connection may send per second (AWS: 512 KiB; 0: no limit). The excess is delayed.</summary>
    [Range(0, int.MaxValue)]
    public int MaxBytesPerSecond { get; set; } = 512 * 1024;

    /// <summary>Shortest keep-alive granted, seconds (AWS: 30); a shorter one is raised (MQTT 5 CONNACK Server Keep Alive).</summary>
    [Range(1, 65535)]
    public int MinKeepAliveSeconds { get; set; } = 30;

    /// <summary>Longest keep-alive granted, seconds (AWS: 1200); longer ones and 0 (none) get this.</summary>
    [Range(1, 65535)]
    public int MaxKeepAliveSeconds { get; set; } = 1200;

    /// <summary>Topic aliases a client may use (MQTT 5 CONNACK Topic Alias Maximum; AWS: 8).</summary>
    [Range(0, 65535)]
    public int TopicAliasMaximum { get; set; } = 8;

    /// <summary>Most topic filters in one SUBSCRIBE (AWS: 8); the ones beyond get SUBACK 0x97 (3.1.1: 0x80).</summary>
    [Range(1, 65535)]
    public int MaxFiltersPerSubscribe { get; set; } = 8;

    /// <summary>Most subscriptions one connection may hold (AWS: 50).</summary>
    [Range(1, 1_000_000)]
    public int MaxSubscriptionsPerConnection { get; set; } = 50;

    /// <summary>
    /// CONNECTs one node accepts per second (a token bucket with a second's worth of burst; AWS: 500 per account). Over
    /// it a CONNECT is refused before any other work: MQTT 5 CONNACK 0x9F (connection rate exceeded), MQTT 3.1.1 return
    /// code 3 (server unavailable), a <c>connect_failed</c> event with reason <c>THROTTLED</c>, the metric
    /// <c>Connect.Throttle</c>. 0: no limit (the default: a node's own capacity is the limit, docs/benchmarks.md).
    /// </summary>
    [Range(0, 1_000_000)]
    public int MaxConnectsPerSecond { get; set; }

    /// <summary>
    /// CONNECTs one client id may make per second on a node (AWS: 1), refused as above with the metric
    /// <c>Connect.ClientIDThrottle</c>: two devices that share a client id and keep taking it from each other slow to
    /// this. 0: no limit (the default).
    /// </summary>
    [Range(0, 1000)]
    public int MaxConnectsPerSecondPerClientId { get; set; }
}
