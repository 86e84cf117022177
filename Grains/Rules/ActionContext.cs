using System.Diagnostics;
using System.Diagnostics.Metrics;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Analytics;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Grains.Rules;

/// <summary>The services rule actions use, resolved once per evaluator.</summary>
internal sealed record RuleServices(IBrokerPublisher Broker, IGrainFactory Grains, ITelemetryStore Telemetry, IServiceProvider Services);

/// <summary>
/// What an action gets: the rule, the message (its SQL context, id and arrival time), the rule's output and whether
/// that is JSON (known from the SQL, so actions need not parse it again), the services, and the batch that collects
/// writes to flush once per stream batch.
/// </summary>
internal sealed record ActionContext(
    string RuleName,
    SqlContext Message,
    Guid MessageId,
    DateTimeOffset ReceivedAt,
    byte[] Output,
    bool OutputIsJson,
    RuleServices Services,
    ActionBatch Batch);

/// <summary>An action ready to run; <see cref="Type"/> and <see cref="Resource"/> name it in AWS's error document.</summary>
/// <param name="Run">
/// Runs the action; an exception fails it. An action that writes in bulk (timeseries, postgres, queue) adds its item
/// to <see cref="ActionContext.Batch"/> and returns, and one handed to a background sender (http) returns once queued;
/// those report their outcome later (metrics, and failures through the callback).
/// </param>
/// <param name="Deferred">True when the outcome is reported later, not by <see cref="Run"/> returning.</param>
internal sealed record CompiledAction(string Type, Func<ActionContext, string> Resource, Func<ActionContext, Func<Exception, Task>, Task> Run, bool Deferred = false);

/// <summary>
/// The writes of one stream batch, grouped by target, flushed together before the batch is acknowledged: a
/// thousand messages into one table cost one statement, and a message counts as handled only once its rows are
/// stored (at least once, with the durable stream). A flush that fails for a passing reason (a database restarting,
/// a broken pooled connection: <see cref="DatabaseErrors.IsTransient"/>) is tried again for up to about 8 s (the stream
/// waits meanwhile); one that still fails, or fails otherwise, fails each of its items' actions (the error action).
/// </summary>
internal sealed class ActionBatch(TimeProvider time)
{
    /// <summary>The pauses before each further try of a flush that failed for a passing reason (7.85 s in all).</summary>
    internal static readonly TimeSpan[] RetryDelays =
        [TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500), TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(4)];

    private readonly Dictionary<object, IGroup> _groups = [];

    public void Add<T>(object target, string ruleName, string actionType, Func<IReadOnlyList<T>, Task> flush, T item, Func<Exception, Task> onFailure)
    {
        if (!_groups.TryGetValue(target, out var group))
        {
            _groups[target] = group = new Group<T>(flush, time);
        }

        ((Group<T>)group).Add(item, ruleName, actionType, onFailure);
    }

    public async Task FlushAsync()
    {
        if (_groups.Count == 0)
        {
            return;
        }

        var groups = _groups.Values.ToList();
        _groups.Clear();
        await Task.WhenAll(groups.Select(g => g.FlushAsync()));
    }

    private interface IGroup
    {
        Task FlushAsync();
    }

    private sealed class Group<T>(Func<IReadOnlyList<T>, Task> flush, TimeProvider time) : IGroup
    {
        private readonly List<T> _items = [];
        private readonly List<(string Rule, string Type, Func<Exception, Task> OnFailure)> _owners = [];

        public void Add(T item, string rule, string type, Func<Exception, Task> onFailure)
        {
            _items.Add(item);
            _owners.Add((rule, type, onFailure));
        }

        public async Task FlushAsync()
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await DatabaseErrors.RetryTransientAsync(() => flush(_items), RetryDelays, time, _ => RuleMetrics.Retried(_owners.Count));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                foreach (var (rule, type, onFailure) in _owners)
                {
                    RuleMetrics.Failed(rule, type, started);
                    await onFailure(ex);
                }

                return;
            }

            foreach (var (rule, type, _) in _owners)
            {
                RuleMetrics.Executed(rule, type, started);
            }
        }
    }
}

/// <summary>Per-rule and per-action counters and latency (meter <c>OrleansIot.Rules</c>).</summary>
internal static class RuleMetrics
{
    private static readonly Meter Meter = new("OrleansIot.Rules");
    private static readonly Counter<long> MatchedCounter = Meter.CreateCounter<long>("iot.rules.matched", description: "Messages a rule selected");
    private static readonly Counter<long> ExecutedCounter = Meter.CreateCounter<long>("iot.rules.actions.executed", description: "Rule actions that succeeded");
    private static readonly Counter<long> FailedCounter = Meter.CreateCounter<long>("iot.rules.actions.failed", description: "Rule actions that failed (the error action ran)");
    private static readonly Counter<long> RetriedCounter = Meter.CreateCounter<long>("iot.rules.actions.retried", description: "Rule action items whose bulk write failed for a passing reason and was tried again");
    private static readonly Histogram<double> Duration = Meter.CreateHistogram<double>("iot.rules.actions.duration", unit: "ms", description: "Time an action took (a bulk action: its batch's write)");

    public static void Matched(string rule) => MatchedCounter.Add(1, new KeyValuePair<string, object?>("rule", rule));

    public static void Executed(string rule, string action, long started) => Record(ExecutedCounter, rule, action, started);

    public static void Failed(string rule, string action, long started) => Record(FailedCounter, rule, action, started);

    public static void Retried(int items) => RetriedCounter.Add(items);

    private static void Record(Counter<long> counter, string rule, string action, long started)
    {
        var tags = new TagList { { "rule", rule }, { "action", action } };
        counter.Add(1, tags);
        Duration.Record(Stopwatch.GetElapsedTime(started).TotalMilliseconds, tags);
    }
}
