using System.Diagnostics.Metrics;
using System.Text;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// The configured protocol limits and what happens when one is exceeded: a metric (<c>iot.limits.exceeded</c>,
/// tagged with the limit) and a log line naming the client and the limit. The caller answers with the protocol's
/// own refusal.
/// </summary>
internal sealed partial class Limits(IOptions<LimitsOptions> options, IMeterFactory meters, ILogger<Limits> logger)
{
    public const string ClientId = "client id length";
    public const string Payload = "payload size";
    public const string TopicLength = "topic length";
    public const string TopicLevels = "topic levels";
    public const string Subscriptions = "subscriptions per connection";
    public const string PublishRate = "publishes per second";
    public const string Throughput = "bytes per second";
    public const string FiltersPerSubscribe = "filters per SUBSCRIBE";
    public const string TopicAlias = "topic alias maximum";
    public const string ReceiveMaximumName = "receive maximum";

    /// <summary>Unacknowledged QoS 1/2 publishes a client may have towards the server (CONNACK's Receive Maximum; AWS: 100).</summary>
    public const int ReceiveMaximum = 100;
    public const string ReservedTopic = "reserved topic (publish only)";

    private readonly Counter<long> _exceeded = meters.Create(Hosting.GatewayMetrics.MeterName)
        .CreateCounter<long>("iot.limits.exceeded", description: "Requests refused because they exceeded a protocol limit");

    public LimitsOptions Values { get; } = options.Value;

    public bool ClientIdTooLong(string clientId) => Encoding.UTF8.GetByteCount(clientId) > Values.MaxClientIdBytes;

    /// <summary>The name of the topic limit a topic (or filter) breaks, or null.</summary>
    public string? TopicProblem(string topic)
    {
        if (Encoding.UTF8.GetByteCount(topic) > Values.MaxTopicBytes)
        {
            return TopicLength;
        }

        if (!topic.StartsWith("$aws/", StringComparison.Ordinal) && topic.AsSpan().Count('/') + 1 > Values.MaxTopicLevels)
        {
            return TopicLevels;
        }

        return null;
    }

    /// <summary>
    /// Takes one publish of <paramref name="bytes"/> from the connection's per-second budgets. False when the
    /// publish rate is exceeded (the publish is discarded); <paramref name="delay"/> is how long to hold the
    /// publish so the connection stays within its throughput.
    /// </summary>
    public bool TryTakePublish(LiveConnection meter, long bytes, long nowTicks, out TimeSpan delay)
    {
        delay = TimeSpan.Zero;
        var rate = Values.MaxPublishesPerSecond;
        var throughput = Values.MaxBytesPerSecond;
        if (rate == 0 && throughput == 0)
        {
            return true;
        }

        lock (meter)
        {
            var second = nowTicks / TimeSpan.TicksPerSecond;
            if (meter.BudgetSecond != second)
            {
                meter.BudgetSecond = second;
                meter.PublishesThisSecond = 0;
            }

            if (rate > 0 && meter.PublishesThisSecond >= rate)
            {
                return false;
            }

            meter.PublishesThisSecond++;
            if (throughput > 0)
            {
                // A token bucket of bytes (burst: one second's worth) that may go into debt: a publish beyond
                // it is held until the debt is paid back at the configured rate.
                if (meter.ByteTokensAt == 0)
                {
                    meter.ByteTokens = throughput;
                }
                else
                {
                    meter.ByteTokens = Math.Min(throughput, meter.ByteTokens + ((nowTicks - meter.ByteTokensAt) * (double)throughput / TimeSpan.TicksPerSecond));
                }

                meter.ByteTokensAt = nowTicks;
                meter.ByteTokens -= bytes;
                if (meter.ByteTokens < 0)
                {
                    delay = TimeSpan.FromSeconds(-meter.ByteTokens / throughput);
                }
            }

            return true;
        }
    }

    /// <summary>Like <see cref="Exceeded"/>, at most once a second per connection (rate limits would flood the log).</summary>
    public void ExceededOncePerSecond(string limit, LiveConnection meter, string detail, long nowTicks)
    {
        _exceeded.Add(1, new KeyValuePair<string, object?>("limit", limit));
        if (Interlocked.Exchange(ref meter.LastLimitLogSecond, nowTicks / TimeSpan.TicksPerSecond) != nowTicks / TimeSpan.TicksPerSecond)
        {
            LogExceeded(logger, Shorten(meter.ClientId), limit, Shorten(detail));
        }
    }

    /// <summary>Counts and logs a refusal; over-long client ids and details are shortened for the log.</summary>
    public void Exceeded(string limit, string clientId, string detail)
    {
        _exceeded.Add(1, new KeyValuePair<string, object?>("limit", limit));
        LogExceeded(logger, Shorten(clientId), limit, Shorten(detail));
    }

    private static string Shorten(string value) => value.Length <= 80 ? value : value[..80] + "...";

    [LoggerMessage(EventId = 1013, Level = LogLevel.Warning, Message = "Client {ClientId} exceeded the {Limit} limit: {Detail}")]
    private static partial void LogExceeded(ILogger logger, string clientId, string limit, string detail);
}
