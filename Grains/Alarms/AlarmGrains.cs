using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Alarms;
using OrleansIot.Grains.Abstractions.Audit;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Grains.Alarms;

// Stored as JSON: the property names are the storage schema. Append, never rename.
[GenerateSerializer, Alias("OrleansIot.AlarmGrainState")]
public sealed class AlarmGrainState
{
    [Id(0)] public AlarmDefinition? Definition { get; set; }
    [Id(1)] public string State { get; set; } = AlarmStates.InsufficientData;
    [Id(2)] public string Reason { get; set; } = "";
    [Id(3)] public DateTimeOffset UpdatedAt { get; set; }
    [Id(4)] public List<AlarmTransition> History { get; set; } = [];
}

/// <summary>
/// One alarm. A timer takes a datapoint every period; a change of state is stored, published on
/// <c>$aws/events/alarms/{alarmName}/state</c> (subscribers and rules see it, as they see lifecycle events) and
/// audited. A one-minute reminder brings the alarm back after its silo (or the cluster) restarted.
/// </summary>
[GrainType("alarm")]
internal sealed partial class AlarmGrain(
    [PersistentState("alarm", StorageNames.Default)] IPersistentState<AlarmGrainState> state,
    IBrokerPublisher broker,
    IOptions<AlarmOptions> options,
    TimeProvider time,
    ILogger<AlarmGrain> logger) : Grain, IAlarmGrain, IRemindable
{
    public const string TopicPrefix = "$aws/events/alarms/";
    private const int HistoryKept = 20;

    internal static readonly string[] Metrics = ["Connect.Success", "PublishIn.Success", "PublishOut.Success", "iot.delivery.dropped", "Connections"];
    internal static readonly string[] Statistics = ["count", "average", "sum", "minimum", "maximum"];
    internal static readonly string[] Operators = ["GreaterThanThreshold", "GreaterThanOrEqualToThreshold", "LessThanThreshold", "LessThanOrEqualToThreshold"];

    private readonly List<double?> _datapoints = [];
    private Dictionary<string, NodeStats>? _lastReports;
    private IGrainTimer? _timer;
    private DateTimeOffset? _evaluatedAt;

    private string AlarmName => this.GetPrimaryKeyString();

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        if (state.State.Definition is { } definition)
        {
            Start(definition);
            await this.RegisterOrUpdateReminder("keep-evaluating", TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1), cancellationToken);
        }
    }

    public Task ReceiveReminder(string reminderName, Orleans.Runtime.TickStatus status) => Task.CompletedTask;   // activation restarts the timer

    public async Task<AlarmDescription> Put(AlarmDefinition definition)
    {
        Check(definition);
        if (definition.FleetQueryString is { } query)
        {
            // The query and field are checked where they will run: a bad one is refused now, with AWS's error.
            await GrainFactory.GetGrain<IFleetIndexGrain>(0).Statistics(null, query, definition.FleetAggregationField);
        }

        if (!await GrainFactory.GetGrain<IAlarmCatalogGrain>(0).Add(AlarmName, options.Value.MaxAlarms))
        {
            throw ApiException.LimitExceeded($"There are {options.Value.MaxAlarms} alarms already (Iot:Alarms:MaxAlarms).");
        }

        var s = state.State;
        var now = time.GetUtcNow();
        var previous = s.State;
        s.Definition = definition;
        s.State = AlarmStates.InsufficientData;
        s.Reason = "Created or replaced: waiting for datapoints.";
        s.UpdatedAt = now;
        if (previous != s.State)
        {
            Remember(new AlarmTransition(now, previous, s.State, s.Reason, []));
        }

        await state.WriteStateAsync();
        _datapoints.Clear();
        _lastReports = null;
        _evaluatedAt = null;
        Start(definition);
        await this.RegisterOrUpdateReminder("keep-evaluating", TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
        return Description(definition);
    }

    public Task<AlarmDescription?> Describe() =>
        Task.FromResult(state.State.Definition is { } definition ? Description(definition) : null);

    public async Task<bool> Delete()
    {
        if (state.State.Definition is null)
        {
            return false;
        }

        _timer?.Dispose();
        _timer = null;
        if (await this.GetReminder("keep-evaluating") is { } reminder)
        {
            await this.UnregisterReminder(reminder);
        }

        await state.ClearStateAsync();
        state.State = new AlarmGrainState();
        await GrainFactory.GetGrain<IAlarmCatalogGrain>(0).Remove(AlarmName);
        DeactivateOnIdle();
        return true;
    }

    public async Task Evaluate()
    {
        if (state.State.Definition is not { } definition)
        {
            return;
        }

        double? point;
        try
        {
            point = await DatapointAsync(definition);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogDatapointFailed(logger, ex, AlarmName);
            point = null;
        }

        _datapoints.Add(point);
        _evaluatedAt = time.GetUtcNow();
        while (_datapoints.Count > definition.EvaluationPeriods)
        {
            _datapoints.RemoveAt(0);
        }

        var (next, reason) = Judge(definition);
        var s = state.State;
        if (next == s.State)
        {
            return;
        }

        var now = time.GetUtcNow();
        var transition = new AlarmTransition(now, s.State, next, reason, [.. _datapoints]);
        s.State = next;
        s.Reason = reason;
        s.UpdatedAt = now;
        Remember(transition);
        await state.WriteStateAsync();
        Announce(definition, transition);
        try
        {
            await GrainFactory.GetGrain<IAuditGrain>(0).Record([new AuditRecord(now, "alarm", "SetAlarmState", $"{AlarmName}: {transition.From} -> {transition.To}", "", 200)]);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogAuditFailed(logger, ex, AlarmName);
        }
    }

    private (string State, string Reason) Judge(AlarmDefinition definition)
    {
        var n = definition.EvaluationPeriods;
        var known = _datapoints.Where(d => d is not null).Select(d => d!.Value).ToList();
        if (_datapoints.Count < n || known.Count < n)
        {
            return (AlarmStates.InsufficientData, $"{known.Count} of the {n} datapoints needed are available.");
        }

        var breaching = known.Count(d => Breaches(definition, d));
        var shown = string.Join(", ", known.Select(d => d.ToString("G6", System.Globalization.CultureInfo.InvariantCulture)));
        return breaching == n
            ? (AlarmStates.Alarm, $"The last {n} datapoints [{shown}] were {definition.ComparisonOperator} {definition.Threshold}.")
            : (AlarmStates.Ok, $"{n - breaching} of the last {n} datapoints [{shown}] were not {definition.ComparisonOperator} {definition.Threshold}.");
    }

    private static bool Breaches(AlarmDefinition d, double value) => d.ComparisonOperator switch
    {
        "GreaterThanThreshold" => value > d.Threshold,
        "GreaterThanOrEqualToThreshold" => value >= d.Threshold,
        "LessThanThreshold" => value < d.Threshold,
        _ => value <= d.Threshold,
    };

    private async Task<double?> DatapointAsync(AlarmDefinition definition)
    {
        if (definition.FleetQueryString is { } query)
        {
            var statistics = await GrainFactory.GetGrain<IFleetIndexGrain>(0).Statistics(null, query, definition.FleetAggregationField);
            return definition.FleetStatistic switch
            {
                "average" => statistics.Average,
                "sum" => statistics.Sum,
                "minimum" => statistics.Minimum,
                "maximum" => statistics.Maximum,
                _ => statistics.Count,
            };
        }

        var reports = (await GrainFactory.GetGrain<INodeStatsGrain>(0).List(options.Value.NodeReportFreshness)).ToDictionary(n => n.NodeId, StringComparer.Ordinal);
        var previous = _lastReports;
        _lastReports = reports;
        if (reports.Count == 0)
        {
            return null;   // no node reports: nothing is known
        }

        if (definition.MetricName == "Connections")
        {
            return reports.Values.Sum(n => n.Connections);
        }

        if (previous is null)
        {
            return null;   // the first look: a counter's period starts here
        }

        // The counters' growth per node since the last look (a node that restarted counts from zero; a new node
        // counts from its first report).
        long sum = 0;
        foreach (var (id, now) in reports)
        {
            var before = previous.GetValueOrDefault(id);
            var (a, b) = (Counter(definition.MetricName!, now), before is null ? 0 : Counter(definition.MetricName!, before));
            sum += before is null ? 0 : a >= b ? a - b : a;
        }

        return sum;
    }

    private static long Counter(string metric, NodeStats n) => metric switch
    {
        "Connect.Success" => n.Connects,
        "PublishIn.Success" => n.PublishIn,
        "PublishOut.Success" => n.PublishOut,
        _ => n.DeliveryDropped,
    };

    private void Check(AlarmDefinition d)
    {
        if ((d.MetricName is null) == (d.FleetQueryString is null))
        {
            throw ApiException.Invalid("Give either metricName or fleetQuery.");
        }

        if (d.MetricName is { } metric && !Metrics.Contains(metric, StringComparer.Ordinal))
        {
            throw ApiException.Invalid($"metricName must be one of {string.Join(", ", Metrics)}.");
        }

        if (d.FleetQueryString is not null && !Statistics.Contains(d.FleetStatistic ?? "count", StringComparer.Ordinal))
        {
            throw ApiException.Invalid($"fleetQuery.statistic must be one of {string.Join(", ", Statistics)}.");
        }

        if (!Operators.Contains(d.ComparisonOperator, StringComparer.Ordinal))
        {
            throw ApiException.Invalid($"comparisonOperator must be one of {string.Join(", ", Operators)}.");
        }

        if (!double.IsFinite(d.Threshold))
        {
            throw ApiException.Invalid("threshold must be a number.");
        }

        var minimum = (int)Math.Ceiling(options.Value.MinimumPeriod.TotalSeconds);
        if (d.PeriodSeconds < minimum || d.PeriodSeconds > 86_400)
        {
            throw ApiException.Invalid($"period must be from {minimum} to 86400 seconds.");
        }

        if (d.EvaluationPeriods is < 1 or > 100)
        {
            throw ApiException.Invalid("evaluationPeriods must be from 1 to 100.");
        }

        if (d.Description is { Length: > 1024 })
        {
            throw ApiException.Invalid("alarmDescription is longer than 1024 characters.");
        }
    }

    private void Start(AlarmDefinition definition)
    {
        _timer?.Dispose();
        var period = TimeSpan.FromSeconds(definition.PeriodSeconds);
        _timer = this.RegisterGrainTimer(static grain => grain.Evaluate(), this, new GrainTimerCreationOptions(period, period) { KeepAlive = true });
    }

    private void Remember(AlarmTransition transition)
    {
        var history = state.State.History;
        history.Insert(0, transition);
        if (history.Count > HistoryKept)
        {
            history.RemoveRange(HistoryKept, history.Count - HistoryKept);
        }
    }

    private void Announce(AlarmDefinition definition, AlarmTransition transition)
    {
        var payload = new JsonObject
        {
            ["alarmName"] = AlarmName,
            ["state"] = transition.To,
            ["previousState"] = transition.From,
            ["reason"] = transition.Reason,
            ["timestamp"] = transition.At.ToUnixTimeMilliseconds(),
            ["metricName"] = definition.MetricName,
            ["fleetQueryString"] = definition.FleetQueryString,
            ["comparisonOperator"] = definition.ComparisonOperator,
            ["threshold"] = definition.Threshold,
            ["datapoints"] = new JsonArray([.. transition.Datapoints.Select(d => d is { } v ? JsonValue.Create(v) : null)]),
        };
        broker.Publish($"{TopicPrefix}{AlarmName}/state", JsonSerializer.SerializeToUtf8Bytes(payload), 1);
    }

    private AlarmDescription Description(AlarmDefinition definition) => new(
        AlarmName, definition, state.State.State, state.State.Reason, state.State.UpdatedAt,
        [.. _datapoints], [.. state.State.History], _evaluatedAt);

    [LoggerMessage(EventId = 2601, Level = LogLevel.Warning, Message = "Alarm {AlarmName} could not take a datapoint; it counts as missing")]
    private static partial void LogDatapointFailed(ILogger logger, Exception exception, string alarmName);

    [LoggerMessage(EventId = 2602, Level = LogLevel.Warning, Message = "Alarm {AlarmName} changed state but the audit log could not record it")]
    private static partial void LogAuditFailed(ILogger logger, Exception exception, string alarmName);
}

/// <summary>The alarms' names, stored, so they can be listed (each alarm's own reminder wakes it after a restart).</summary>
[GrainType("alarm-catalog")]
internal sealed class AlarmCatalogGrain(
    [PersistentState("alarms", StorageNames.Default)] IPersistentState<SortedSet<string>> names) : Grain, IAlarmCatalogGrain
{
    public async Task<bool> Add(string alarmName, int limit)
    {
        if (names.State.Contains(alarmName))
        {
            return true;
        }

        if (names.State.Count >= limit)
        {
            return false;
        }

        names.State.Add(alarmName);
        await names.WriteStateAsync();
        return true;
    }

    public async Task Remove(string alarmName)
    {
        if (names.State.Remove(alarmName))
        {
            await names.WriteStateAsync();
        }
    }

    public Task<IReadOnlyList<string>> List() => Task.FromResult<IReadOnlyList<string>>([.. names.State]);
}
