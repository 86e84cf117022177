using System.ComponentModel.DataAnnotations;
using System.Net;

namespace OrleansIot.Gateway.Hosting;

/// <summary>Where this node listens and what it calls itself (section <c>Iot</c>).</summary>
public sealed class NodeOptions : IValidatableObject
{
    public const string SectionName = "Iot";

    /// <summary><c>localhost</c> (loopback, IPv4 and IPv6), <c>*</c> (every interface) or an IP address.</summary>
    [Required]
    public string BindAddress { get; set; } = "localhost";

    /// <summary>Name of this node in connectivity records and logs; defaults to host name and HTTP port.</summary>
    public string? NodeName { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (BindAddress is not ("localhost" or "*") && !IPAddress.TryParse(BindAddress, out _))
        {
            yield return new ValidationResult($"'{BindAddress}' is not 'localhost', '*' or an IP address.", [nameof(BindAddress)]);
        }
    }
}

/// <summary>MQTT listeners (section <c>Iot:Mqtt</c>).</summary>
public sealed class MqttOptions
{
    public const string SectionName = "Iot:Mqtt";

    /// <summary>MQTT 3.1.1 and 5.0 over plain TCP.</summary>
    [Range(1, 65535)]
    public int Port { get; set; } = 1883;

    /// <summary>MQTT over TLS; open only when a server certificate is configured (<c>Iot:Tls</c>).</summary>
    [Range(1, 65535)]
    public int TlsPort { get; set; } = 8883;

    /// <summary>Path of MQTT over WebSockets on the HTTP port.</summary>
    [Required, RegularExpression("^/.*", ErrorMessage = "must start with '/'.")]
    public string WebSocketPath { get; set; } = "/mqtt";

    /// <summary>
    /// Back-pressure: when this many messages wait to be sent to one connection, publishers adding to its queue wait
    /// before their publish is acknowledged, until it is below this again (see <see cref="PublisherWaitLimit"/>).
    /// </summary>
    [Range(1, 1_000_000)]
    public int MaxPendingMessagesPerClient { get; set; } = 1000;

    /// <summary>
    /// A connection's queue never holds more: beyond it, new messages for that client are dropped, counted
    /// (<c>iot.delivery.dropped</c>, its thing's <c>messagesDropped</c>) and logged once a minute with its client id.
    /// </summary>
    [Range(1, 10_000_000)]
    public int MaxQueuedMessagesPerClient { get; set; } = 10_000;

    /// <summary>
    /// The longest a publisher waits for one slow subscriber's queue; a subscriber that does not catch up within it is
    /// marked stalled, and publishers stop waiting for it (its queue then grows to <see cref="MaxQueuedMessagesPerClient"/>).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan PublisherWaitLimit { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Initial size of each connection's packet encode buffer (grows as needed; MQTTnet's default is 4096).</summary>
    [Range(128, 65535)]
    public int WriterBufferBytes { get; set; } = 512;
}

/// <summary>The HTTP listener (section <c>Iot:Http</c>): API, health and MQTT over WebSockets.</summary>
public sealed class HttpOptions
{
    public const string SectionName = "Iot:Http";

    [Range(1, 65535)]
    public int Port { get; set; } = 8080;
}

/// <summary>The HTTPS listener (section <c>Iot:Https</c>): API and MQTT over secure WebSockets.</summary>
public sealed class HttpsOptions
{
    public const string SectionName = "Iot:Https";

    /// <summary>Open only when a server certificate is configured (<c>Iot:Tls</c>).</summary>
    [Range(1, 65535)]
    public int Port { get; set; } = 8443;
}

/// <summary>
/// The TLS listeners (section <c>Iot:Tls</c>): MQTT on 8883, HTTPS and secure WebSockets on 8443, each asking
/// devices for a client certificate (mTLS). The server certificate is a configured one (PEM certificate chain plus
/// key, or PKCS#12) or, when none is configured, one the platform CA issues to this node for <see cref="HostNames"/>
/// (devices trust the CA from <c>GET /api/cacertificate</c>).
/// </summary>
public sealed class TlsOptions
{
    public const string SectionName = "Iot:Tls";

    /// <summary>Open the TLS listeners.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>PEM certificate (chain) or a .pfx/.p12 file.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key, when <see cref="CertificatePath"/> is PEM.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Password of a PKCS#12 file.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>
    /// Names (DNS names or IP addresses) in the certificate the platform CA issues to this node, besides
    /// <c>localhost</c>, <c>127.0.0.1</c>, <c>::1</c> and the machine name, which are always in it.
    /// </summary>
    public IList<string> HostNames { get; } = [];

    /// <summary>How long a node's issued server certificate is valid; the node gets a new one at start and after two thirds of this.</summary>
    [System.ComponentModel.DataAnnotations.Range(1, 825)]
    public int IssuedValidityDays { get; set; } = 90;

    /// <summary>
    /// MQTT and HTTPS on one port, told apart by ALPN as on AWS's port 443 (for networks that only let HTTPS out):
    /// <c>x-amzn-mqtt-ca</c> or <c>mqtt</c> is MQTT with a device certificate, anything else (or no ALPN) HTTPS.
    /// 0: not opened (443 needs privileges most development machines do not grant).
    /// </summary>
    [System.ComponentModel.DataAnnotations.Range(0, 65535)]
    public int MultiplexPort { get; set; }

    public bool HasFile => !string.IsNullOrWhiteSpace(CertificatePath);
}

/// <summary>Device authentication (section <c>Iot:Auth</c>).</summary>
public sealed class AuthOptions : IValidatableObject
{
    public const string SectionName = "Iot:Auth";

    /// <summary>
    /// Accept MQTT connections on the plain listener (1883, and WebSockets on the HTTP port) without a certificate,
    /// under the development policy (everything allowed). Development only. Unset: on in the embedded default,
    /// off with <c>Iot:Storage=Postgres</c>. Certificate connections on the TLS listeners are authenticated and
    /// authorized by their policies either way.
    /// </summary>
    public bool? AllowAnonymous { get; set; }

    /// <summary>
    /// The name of a policy (managed with the policy API) that governs connections under development access
    /// (anonymous and <see cref="Users"/>), as a certificate's policies govern its device: connect, publish, subscribe,
    /// receive. Unset: development access may do everything. Until the named policy exists, such connections are
    /// refused with a reason that names it. Lets a developer try production policies on a laptop.
    /// </summary>
    public string? DevelopmentPolicy { get; set; }

    /// <summary>
    /// Development users (name → password) for the plain listener: a device giving one of these gets the development
    /// policy even with <see cref="AllowAnonymous"/> off; a wrong password is refused (MQTT 5 0x86, 3.1.1 code 4).
    /// Configuration holds the passwords, so this is for development and test rigs, never for a real fleet.
    /// </summary>
    public IDictionary<string, string> Users { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>
    /// An admin API key accepted from configuration (never stored; at least 16 characters). Unset or empty: on the
    /// deployment's first start an admin key is made, stored hashed and printed once in the log.
    /// </summary>
    public string? BootstrapAdminKey { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (!string.IsNullOrEmpty(BootstrapAdminKey) && BootstrapAdminKey.Length < 16)
        {
            yield return new ValidationResult("must be at least 16 characters (or empty: a key is made at first start).", [nameof(BootstrapAdminKey)]);
        }
    }
}

/// <summary>Metering (section <c>Iot:Usage</c>).</summary>
public sealed class UsageOptions
{
    public const string SectionName = "Iot:Usage";

    /// <summary>How often the gateway sends each connection's coalesced counters to its thing grain.</summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan FlushInterval { get; set; } = TimeSpan.FromSeconds(1);
}

/// <summary>The telemetry stream (section <c>Iot:Telemetry</c>).</summary>
public sealed class TelemetryOptions
{
    public const string SectionName = "Iot:Telemetry";

    /// <summary>Number of telemetry partitions (streams). Must be the same on every node of a cluster.</summary>
    [Range(1, 1024)]
    public int Partitions { get; set; } = Grains.Abstractions.Telemetry.TelemetryPartitions.DefaultCount;

    /// <summary>Most messages in one stream event.</summary>
    [Range(1, 10_000)]
    public int MaxBatchSize { get; set; } = 512;

    /// <summary>
    /// Messages waiting per partition before QoS 0 publishes are dropped (counted and logged) and QoS 1/2
    /// publishers wait for room (their PUBACK is delayed: back-pressure, never loss).
    /// </summary>
    [Range(1, 1_000_000)]
    public int QueueCapacity { get; set; } = 20_000;

    /// <summary>
    /// Send the QoS 1/2 acknowledgement only after the message is written to the telemetry stream. Unset: on when
    /// the stream is durable (PostgreSQL mode), where it makes PUBACK mean "stored"; off in the embedded default,
    /// where the stream is memory and waiting would only add latency (a full queue still holds the publisher back).
    /// </summary>
    public bool? AcknowledgeAfterWrite { get; set; }

    /// <summary>
    /// How long a partition's writer waits for more messages before writing a stream event (0: write what is
    /// there at once). Larger events mean fewer stream writes, each a commit in PostgreSQL mode, for this much more
    /// latency until PUBACK. Off by default: 10 ms in PostgreSQL mode measured no better than 0 on a 2-core
    /// machine (docs/benchmarks.md, session 4), where writes already batch whatever arrives while one is in flight.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:00:01")]
    public TimeSpan Linger { get; set; }

    /// <summary>
    /// PostgreSQL mode: how long a stream event taken by a node stays reserved for it. When the node dies before its
    /// consumers finished the event, another node gets it after this (at least once). Longer than the slowest batch
    /// of rule actions, or events are delivered twice while still being handled.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan RedeliverAfter { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>
    /// Embedded mode: how long the memory stream's cache keeps telemetry it has delivered. Orleans keeps 30 minutes by
    /// default (for consumers that rewind, which ours do not): a 30-minute soak at 5,800 msg/s grew the node by 70 MiB a
    /// minute. An event still waiting for a consumer this long after it was written is dropped by the cache.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:10", "00:30:00")]
    public TimeSpan MemoryStreamCacheAge { get; set; } = TimeSpan.FromMinutes(1);
}

/// <summary>The Prometheus endpoint (section <c>Iot:Metrics</c>).</summary>
public sealed class MetricsOptions
{
    public const string SectionName = "Iot:Metrics";

    /// <summary>Whether <c>/metrics</c> is served (the instruments count either way; nothing collects them when off).</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>
    /// Whether <c>/metrics</c> answers without an API key. Off by default: a scraper sends a reader key
    /// (Prometheus: <c>authorization: {type: Bearer, credentials: …}</c>); turn it on for a scraper on a trusted network.
    /// </summary>
    public bool AllowAnonymous { get; set; }
}

/// <summary>The Orleans Dashboard at <c>/dashboard</c>, for admins (section <c>Iot:Dashboard</c>).</summary>
public sealed class DashboardAccessOptions
{
    public const string SectionName = "Iot:Dashboard";

    /// <summary>
    /// Whether the dashboard is served. Its grain-call profiler measures calls only while someone has the dashboard
    /// open (and a minute after); otherwise it costs one check per grain call. It also samples Orleans' metrics every
    /// second and holds about 60 MiB (docs/benchmarks.md, session 8): turn it off on nodes nobody watches through it.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>How long a dashboard session (the cookie the console's sign-in gets for it) lasts.</summary>
    [System.ComponentModel.DataAnnotations.Range(typeof(TimeSpan), "00:01:00", "7.00:00:00")]
    public TimeSpan SessionLifetime { get; set; } = TimeSpan.FromHours(8);
}
