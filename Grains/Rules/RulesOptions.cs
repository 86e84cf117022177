using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Rules;

/// <summary>Rules engine settings (<c>Iot:Rules</c>).</summary>
public sealed class RulesOptions
{
    public const string SectionName = "Iot:Rules";

    /// <summary>
    /// How often an evaluator asks the catalog whether rules changed (one small call per partition per interval); a
    /// changed rule applies everywhere within this. Zero: before every batch (tests).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>http action: deliveries in a row to one endpoint that may fail before its circuit opens (Polly: at least 2).</summary>
    [Range(2, 1000)]
    public int HttpBreakerFailures { get; set; } = 5;

    /// <summary>http action: how long an open circuit fails deliveries at once before one tries again.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "01:00:00")]
    public TimeSpan HttpBreakerOpen { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>http action: deliveries that may wait per endpoint; beyond, the action fails at once.</summary>
    [Range(1, 1_000_000)]
    public int HttpQueueCapacity { get; set; } = 10_000;

    /// <summary>http action: requests in flight per endpoint.</summary>
    [Range(1, 64)]
    public int HttpConcurrency { get; set; } = 4;

    /// <summary>
    /// How long an evaluator keeps its count of rule executions per thing before adding it to the things' usage
    /// (<c>GET /api/usage</c>): one call per thing per interval, not per message. A node's death loses at most this much.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:10:00")]
    public TimeSpan UsageFlushInterval { get; set; } = TimeSpan.FromSeconds(5);
}
