using System.Diagnostics.Metrics;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Streams;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Rules;
using OrleansIot.Grains.Abstractions.Telemetry;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Grains.Rules;

/// <summary>The evaluator of one telemetry partition (implicitly subscribed; key = partition). Only the stream calls it.</summary>
[Alias("OrleansIot.IRuleEvaluatorGrain")]
public interface IRuleEvaluatorGrain : IGrainWithStringKey;

/// <summary>
/// Consumes one partition of the telemetry stream and runs every enabled rule whose FROM filter matches each message
/// (a Basic Ingest message, <c>$aws/rules/{rule}/…</c>, only that rule). Holds the rules compiled; asks the catalog
/// for changes at most once per <see cref="RulesOptions.RefreshInterval"/>. Messages of one device arrive in order
/// (one partition per device), and actions run in that order.
/// </summary>
[ImplicitStreamSubscription(StreamNames.Telemetry)]
[GrainType("rule-evaluator")]
internal sealed partial class RuleEvaluatorGrain(
    IBrokerPublisher broker,
    IOptions<RulesOptions> options,
    TimeProvider time,
    ILogger<RuleEvaluatorGrain> logger) : Grain, IRuleEvaluatorGrain, IAsyncObserver<TelemetryBatch>
{
    private static readonly Meter Meter = new("OrleansIot.Rules");
    private static readonly Counter<long> Matched = Meter.CreateCounter<long>("iot.rules.matched", description: "Messages a rule selected");
    private static readonly Counter<long> Executed = Meter.CreateCounter<long>("iot.rules.actions.executed", description: "Rule actions that succeeded");
    private static readonly Counter<long> Failed = Meter.CreateCounter<long>("iot.rules.actions.failed", description: "Rule actions that failed (the error action ran)");

    private long _version = -1;
    private long _checkedAt;
    private List<CompiledRule> _rules = [];

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var stream = this.GetStreamProvider(StreamNames.Provider).GetStream<TelemetryBatch>(StreamNames.Telemetry, this.GetPrimaryKeyString());
        var handles = await stream.GetAllSubscriptionHandles();
        if (handles.Count > 0)
        {
            foreach (var handle in handles)
            {
                await handle.ResumeAsync(this);
            }
        }
        else
        {
            await stream.SubscribeAsync(this);
        }
    }

    public async Task OnNextAsync(TelemetryBatch item, StreamSequenceToken? token = null)
    {
        await RefreshAsync();
        if (_rules.Count == 0)
        {
            return;
        }

        foreach (var message in item.Messages)
        {
            await EvaluateAsync(message);
        }
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;

    private async Task EvaluateAsync(TelemetryMessage message)
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

            context ??= new SqlContext(message.Topic, message.Payload, message.ClientId, timestampMs: time.GetUtcNow().ToUnixTimeMilliseconds());
            SqlOutput? output;
            try
            {
                output = rule.Statement.Evaluate(context);
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

            Matched.Add(1, new KeyValuePair<string, object?>("rule", rule.Name));
            await RunActionsAsync(rule, new ActionContext(rule.Name, context, output.ToBytes(), broker, GrainFactory), message);
        }
    }

    private async Task RunActionsAsync(CompiledRule rule, ActionContext context, TelemetryMessage message)
    {
        List<(CompiledAction Action, Exception Error)>? failures = null;
        foreach (var action in rule.Actions)
        {
            try
            {
                await action.Run(context);
                Executed.Add(1, new KeyValuePair<string, object?>("rule", rule.Name));
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Failed.Add(1, new KeyValuePair<string, object?>("rule", rule.Name));
                LogActionFailed(logger, ex, rule.Name, action.Type);
                (failures ??= []).Add((action, ex));
            }
        }

        if (failures is null || rule.ErrorAction is not { } errorAction)
        {
            return;
        }

        // AWS's error document: one per invocation, listing every failed action.
        var document = new JsonObject
        {
            ["ruleName"] = rule.Name,
            ["topic"] = message.Topic,
            ["cloudwatchTraceId"] = Guid.NewGuid().ToString(),
            ["clientId"] = message.ClientId,
            ["base64OriginalPayload"] = Convert.ToBase64String(message.Payload),
            ["failures"] = new JsonArray([.. failures.Select(f => (JsonNode?)new JsonObject
            {
                ["failedAction"] = f.Action.Type,
                ["failedResource"] = SafeResource(f.Action, context),
                ["errorMessage"] = f.Error.Message,
            })]),
        };
        try
        {
            await errorAction.Run(context with { Output = Encoding.UTF8.GetBytes(document.ToJsonString()) });
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogActionFailed(logger, ex, rule.Name, "errorAction " + errorAction.Type);
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

    private async Task RefreshAsync()
    {
        var now = time.GetUtcNow().UtcTicks;
        if (_version >= 0 && now - _checkedAt < options.Value.RefreshInterval.Ticks)
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

    private sealed record CompiledRule(string Name, SqlStatement Statement, IReadOnlyList<CompiledAction> Actions, CompiledAction? ErrorAction);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rule {RuleName} could not evaluate a message on {Topic}")]
    private static partial void LogEvaluationFailed(ILogger logger, Exception exception, string ruleName, string topic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rule {RuleName}: action {Action} failed")]
    private static partial void LogActionFailed(ILogger logger, Exception exception, string ruleName, string action);

    [LoggerMessage(Level = LogLevel.Error, Message = "Rule {RuleName} does not compile and is skipped")]
    private static partial void LogRuleSkipped(ILogger logger, Exception exception, string ruleName);
}
