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

    /// <summary>Counts and logs a refusal; over-long client ids and details are shortened for the log.</summary>
    public void Exceeded(string limit, string clientId, string detail)
    {
        _exceeded.Add(1, new KeyValuePair<string, object?>("limit", limit));
        LogExceeded(logger, Shorten(clientId), limit, Shorten(detail));
    }

    private static string Shorten(string value) => value.Length <= 80 ? value : value[..80] + "...";

    [LoggerMessage(Level = LogLevel.Warning, Message = "Client {ClientId} exceeded the {Limit} limit: {Detail}")]
    private static partial void LogExceeded(ILogger logger, string clientId, string limit, string detail);
}
