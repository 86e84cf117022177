using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Gateway.Sessions;

/// <summary>Persistent sessions and wills (section <c>Iot:Sessions</c>). Defaults as AWS IoT Core.</summary>
public sealed class SessionOptions
{
    public const string SectionName = "Iot:Sessions";

    /// <summary>
    /// Longest session expiry granted (AWS: 1 hour by default, up to 7 days). An MQTT 5 client asking for more
    /// gets this, and CONNACK says so; an MQTT 3.1.1 persistent session (clean session 0) gets this.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "7.00:00:00")]
    public TimeSpan MaxSessionExpiry { get; set; } = TimeSpan.FromHours(1);

    /// <summary>QoS 1/2 messages kept per offline session; beyond it the oldest are dropped (metric and log).</summary>
    [Range(1, 1_000_000)]
    public int MaxQueuedMessages { get; set; } = 1000;

    /// <summary>How often this node writes the list of client ids it hosts (read by whoever adopts them).</summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:01:00")]
    public TimeSpan HostListFlushInterval { get; set; } = TimeSpan.FromSeconds(1);
}
