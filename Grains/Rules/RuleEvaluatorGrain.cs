using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Streams;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Rules;
using OrleansIot.Grains.Abstractions.Telemetry;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Analytics;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Grains.Rules;

/// <summary>The evaluator of one telemetry partition (implicitly subscribed; key = partition). Only the stream calls it.</summary>
[Alias("OrleansIot.IRuleEvaluatorGrain")]
public interface IRuleEvaluatorGrain : IGrainWithStringKey;

/// <summary>
/// Consumes one partition of the telemetry stream and runs every enabled rule whose FROM filter matches each message
/// (a Basic Ingest message, <c>$aws/rules/{rule}/…</c>, only that rule). Holds the rules compiled; asks the catalog
/// for changes at most once per <see cref="RulesOptions.RefreshInterval"/>, or at once for a batch whose gateway read
/// a newer catalog (<see cref="TelemetryBatch.RulesVersion"/>). Messages of one device arrive in order
/// (one partition per device), and actions run in that order.
/// </summary>
[ImplicitStreamSubscription(StreamNames.Telemetry)]
[GrainType("rule-evaluator")]
internal sealed partial class RuleEvaluatorGrain(
    IBrokerPublisher broker,
    ITelemetryStore telemetry,
    IServiceProvider services,
    IOptions<RulesOptions> options,
    TimeProvider time,
    ActionFailureLog failureLog,
    ILogger<RuleEvaluatorGrain> logger) : Grain, IRuleEvaluatorGrain, IAsyncBatchObserver<TelemetryBatch>
{
    private long _version = -1;
    private long _checkedAt;
    private List<CompiledRule> _rules = [];
    private RuleServices _services = null!;
    private Func<string, string, Task<byte[]?>> _readShadow = null!;
    private readonly Dictionary<string, long> _executions = new(StringComparer.Ordinal);
    private IGrainTimer? _usageTimer;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _services = new RuleServices(broker, GrainFactory, telemetry, services);
        _readShadow = (thing, shadow) => GrainFactory.GetGrain<IThingGrain>(thing).ReadShadow(shadow);   // one delegate, not one per message
        var stream = this.GetStreamProvider(StreamNames.Provider).GetStream<TelemetryBatch>(StreamNames.Telemetry, this.GetPrimaryKeyString());
        var handles = await stream.GetAllSubscriptionHandles();
        if (handles.Count > 0)
        {
            foreach (var handle in handles)
            {
                await handle.ResumeAsync((IAsyncBatchObserver<TelemetryBatch>)this);
            }
        }
        else
        {
            await stream.SubscribeAsync((IAsyncBatchObserver<TelemetryBatch>)this);
        }
    }

    /// <summary>
    /// Runs the rules on each message of the stream events the pulling agent has (up to its batch size), then
    /// writes what the bulk actions collected, once. The events count as delivered only when this returns, so in
    /// PostgreSQL mode a node's death before then means redelivery.
    /// </summary>
    public async Task OnNextAsync(IList<SequentialItem<TelemetryBatch>> items)
    {
        var seen = 0L;
        foreach (var item in items)
        {
            seen = Math.Max(seen, item.Item.RulesVersion);
        }

        // A gateway that read a newer catalog wrote these: read it now, not at the next interval.
        await RefreshAsync(force: seen > _version);
        if (_rules.Count == 0)
        {
            return;
        }

        var batch = new ActionBatch(time);
        foreach (var item in items)
        {
            foreach (var message in item.Item.Messages)
            {
                await EvaluateAsync(message, batch);
            }
        }

        await batch.FlushAsync();
    }

    public Task OnNextAsync(TelemetryBatch item, StreamSequenceToken? token = null) => OnNextAsync([new SequentialItem<TelemetryBatch>(item, token!)]);

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    private async Task EvaluateAsync(TelemetryMessage message, ActionBatch batch)
    {
        string? basicIngestRule = null;
        if (message.Topic.StartsWith("$aws/rules/", StringComparison.Ordinal))
        {
            var end = message.Topic.IndexOf('/', "$aws/rules/".Length);
            basicIngestRule = end < 0 ? message.Topic["$aws/rules/".Length..] : message.Topic["$aws/rules/".Length..end];
        }

        SqlContext? context = null;
        foreach (var rule in _rules)
        {
            if (basicIngestRule is not null ? rule.Name != basicIngestRule : !rule.Statement.Matches(message.Topic))
            {
                continue;
            }

            // timestamp() and traceid() come from the message, so a redelivered message evaluates the same.
            context ??= new SqlContext(message.Topic, message.Payload, message.ClientId,
                timestampMs: message.ReceivedAt.ToUnixTimeMilliseconds(), traceId: message.MessageId.ToString());
            SqlOutput? output;
            try
            {
                output = await rule.Statement.EvaluateAsync(context, _readShadow);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogEvaluationFailed(logger, ex, rule.Name, message.Topic);
                continue;
            }

            if (output is null)
            {
                continue;
            }

            RuleMetrics.Matched(rule.Name);
            CountExecution(message.ClientId);
            await RunActionsAsync(rule, new ActionContext(rule.Name, context, message.MessageId, message.ReceivedAt, output.ToBytes(), output.IsJson, _services, batch), message);
        }
    }

    private async Task RunActionsAsync(CompiledRule rule, ActionContext context, TelemetryMessage message)
    {
        List<(CompiledAction Action, Exception Error)>? failures = null;
        foreach (var action in rule.Actions)
        {
            var started = Stopwatch.GetTimestamp();
            try
            {
                await action.Run(context, ex => RunErrorActionAsync(rule, context, message, [(action, ex)]));
                if (!action.Deferred)
                {
                    RuleMetrics.Executed(rule.Name, action.Type, started);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                RuleMetrics.Failed(rule.Name, action.Type, started);
                failureLog.Failed(rule.Name, action.Type, ex);
                (failures ??= []).Add((action, ex));
            }
        }

        if (failures is not null)
        {
            await RunErrorActionAsync(rule, context, message, failures);
        }
    }

    /// <summary>
    /// AWS's error document, one per failed invocation, listing the failed actions, to the rule's error action.
    /// Also called later for bulk and http actions (after their write or delivery failed), so the error action
    /// runs with a batch of its own, written at once.
    /// </summary>
    private async Task RunErrorActionAsync(CompiledRule rule, ActionContext context, TelemetryMessage message, List<(CompiledAction Action, Exception Error)> failures)
    {
        foreach (var (action, error) in failures.Where(f => f.Action.Deferred))
        {
            failureLog.Failed(rule.Name, action.Type, error);
        }

        if (rule.ErrorAction is not { } errorAction)
        {
            return;
        }

        var document = new JsonObject
        {
            ["ruleName"] = rule.Name,
            ["topic"] = message.Topic,
            ["cloudwatchTraceId"] = message.MessageId.ToString(),
            ["clientId"] = message.ClientId,
            ["base64OriginalPayload"] = Convert.ToBase64String(message.Payload),
            ["failures"] = new JsonArray([.. failures.Select(f => (JsonNode?)new JsonObject
            {
                ["failedAction"] = f.Action.Type,
                ["failedResource"] = SafeResource(f.Action, context),
                ["errorMessage"] = f.Error.Message,
            })]),
        };
        var own = new ActionBatch(time);
        try
        {
            await errorAction.Run(context with { Output = Encoding.UTF8.GetBytes(document.ToJsonString()), OutputIsJson = true, Batch = own },
                ex =>
                {
                    failureLog.Failed(rule.Name, "errorAction " + errorAction.Type, ex);
                    return Task.CompletedTask;
                });
            await own.FlushAsync();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            failureLog.Failed(rule.Name, "errorAction " + errorAction.Type, ex);
        }
    }

    private static string SafeResource(CompiledAction action, ActionContext context)
    {
        try
        {
            return action.Resource(context);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return "";
        }
    }

    private async Task RefreshAsync(bool force)
    {
        var now = time.GetUtcNow().UtcTicks;
        if (!force && _version >= 0 && now - _checkedAt < options.Value.RefreshInterval.Ticks)
        {
            return;
        }

        _checkedAt = now;
        var catalog = GrainFactory.GetGrain<IRuleCatalogGrain>(IRuleCatalogGrain.Key);
        if (await catalog.Version() == _version)
        {
            return;
        }

        var set = await catalog.Get();
        var rules = new List<CompiledRule>();
        foreach (var rule in set.Rules.Where(r => !r.RuleDisabled))
        {
            try
            {
                rules.Add(new CompiledRule(
                    rule.RuleName,
                    SqlStatement.Parse(rule.Sql),
                    [.. RuleGrain.ParseActions(rule.ActionsJson, "actions").Select(RuleActions.Compile)],
                    rule.ErrorActionJson is { } error ? RuleActions.Compile(RuleGrain.ParseObject(error, "errorAction")) : null));
            }
            catch (Exception ex) when (ex is SqlSyntaxException or ApiException)
            {
                // Validated when stored; a rule that no longer compiles (an older build's rule) is skipped, loudly.
                LogRuleSkipped(logger, ex, rule.RuleName);
            }
        }

        _rules = rules;
        _version = set.Version;
    }

    /// <summary>A rule ran on a message of this client: counted in its thing's usage at the next flush.</summary>
    private void CountExecution(string clientId)
    {
        if (string.IsNullOrEmpty(clientId) || clientId[0] == '$')
        {
            return;   // not a device: the platform's own messages
        }

        System.Runtime.InteropServices.CollectionsMarshal.GetValueRefOrAddDefault(_executions, clientId, out _)++;
        _usageTimer ??= this.RegisterGrainTimer(
            static (grain, _) => grain.FlushUsageAsync(),
            this,
            new GrainTimerCreationOptions(options.Value.UsageFlushInterval, Timeout.InfiniteTimeSpan) { KeepAlive = false });
    }

    /// <summary>Adds the counted executions to the things' usage (a failed call loses its count, logged).</summary>
    private async Task FlushUsageAsync()
    {
        _usageTimer?.Dispose();
        _usageTimer = null;
        if (_executions.Count == 0)
        {
            return;
        }

        var counts = _executions.ToArray();
        _executions.Clear();
        foreach (var chunk in counts.Chunk(64))
        {
            await Task.WhenAll(chunk.Select(async count =>
            {
                try
                {
                    await GrainFactory.GetGrain<IThingGrain>(count.Key).RecordUsage(new UsageDelta(0, 0, 0, 0, RuleExecutions: count.Value));
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    Things.UsageMetrics.Lost("rule_executions", count.Value);
                    LogUsageLost(logger, ex, count.Value, count.Key);
                }
            }));
        }
    }

    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken) => FlushUsageAsync();

    private sealed record CompiledRule(string Name, SqlStatement Statement, IReadOnlyList<CompiledAction> Actions, CompiledAction? ErrorAction);

    [LoggerMessage(EventId = 2008, Level = LogLevel.Warning, Message = "Rule {RuleName} could not evaluate a message on {Topic}")]
    private static partial void LogEvaluationFailed(ILogger logger, Exception exception, string ruleName, string topic);

    [LoggerMessage(EventId = 2044, Level = LogLevel.Warning, Message = "{Count} rule executions of {ClientId} were not added to its usage")]
    private static partial void LogUsageLost(ILogger logger, Exception exception, long count, string clientId);

    [LoggerMessage(EventId = 2009, Level = LogLevel.Error, Message = "Rule {RuleName} does not compile and is skipped")]
    private static partial void LogRuleSkipped(ILogger logger, Exception exception, string ruleName);
}
