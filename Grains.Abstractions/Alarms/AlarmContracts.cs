namespace OrleansIot.Grains.Abstractions.Alarms;

/// <summary>AWS CloudWatch's alarm states.</summary>
public static class AlarmStates
{
    /// <summary>The datapoints do not breach the threshold.</summary>
    public const string Ok = "OK";

    /// <summary>The last <c>EvaluationPeriods</c> datapoints all breach it.</summary>
    public const string Alarm = "ALARM";

    /// <summary>Not enough datapoints yet, or the source had none.</summary>
    public const string InsufficientData = "INSUFFICIENT_DATA";
}

/// <summary>
/// What an alarm watches: a broker metric summed over the cluster (<see cref="MetricName"/>: <c>Connect.Success</c>,
/// <c>PublishIn.Success</c>, <c>PublishOut.Success</c> and <c>iot.delivery.dropped</c> counted over each period,
/// <c>Connections</c> as it is at the period's end), or a fleet statistic (<see cref="FleetQueryString"/>, over
/// <see cref="FleetAggregationField"/>, <see cref="FleetStatistic"/>: count, average, sum, minimum, maximum). Each period
/// gives one datapoint, compared with <see cref="Threshold"/>; the alarm is in ALARM when the last
/// <see cref="EvaluationPeriods"/> datapoints all breach, OK when they do not, INSUFFICIENT_DATA until there are that
/// many (or while the source has no data).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.AlarmDefinition")]
public sealed record AlarmDefinition(
    [property: Id(0)] string? Description,
    [property: Id(1)] string? MetricName,
    [property: Id(2)] string? FleetQueryString,
    [property: Id(3)] string? FleetAggregationField,
    [property: Id(4)] string? FleetStatistic,
    [property: Id(5)] string ComparisonOperator,
    [property: Id(6)] double Threshold,
    [property: Id(7)] int PeriodSeconds,
    [property: Id(8)] int EvaluationPeriods);

/// <summary>A change of an alarm's state, with the datapoints that made it.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.AlarmTransition")]
public sealed record AlarmTransition(
    [property: Id(0)] DateTimeOffset At,
    [property: Id(1)] string From,
    [property: Id(2)] string To,
    [property: Id(3)] string Reason,
    [property: Id(4)] IReadOnlyList<double?> Datapoints);

/// <summary>An alarm as <c>GET /api/alarms</c> shows it.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.AlarmDescription")]
public sealed record AlarmDescription(
    [property: Id(0)] string AlarmName,
    [property: Id(1)] AlarmDefinition Definition,
    [property: Id(2)] string State,
    [property: Id(3)] string StateReason,
    [property: Id(4)] DateTimeOffset StateUpdatedAt,
    [property: Id(5)] IReadOnlyList<double?> RecentDatapoints,
    [property: Id(6)] IReadOnlyList<AlarmTransition> History,
    [property: Id(7)] DateTimeOffset? LastEvaluatedAt);

/// <summary>One alarm (key: its name): its definition, its state and the timer that evaluates it every period.</summary>
[Alias("OrleansIot.IAlarmGrain")]
public interface IAlarmGrain : IGrainWithStringKey
{
    /// <summary>Creates or replaces the alarm (AWS <c>PutMetricAlarm</c>); a replaced alarm starts again from INSUFFICIENT_DATA.</summary>
    [Alias("Put")]
    Task<AlarmDescription> Put(AlarmDefinition definition);

    /// <summary>The alarm, or null when there is none of this name.</summary>
    [Alias("Describe")]
    Task<AlarmDescription?> Describe();

    /// <summary>Deletes the alarm; false when there was none.</summary>
    [Alias("Delete")]
    Task<bool> Delete();

    /// <summary>Evaluates one period now (the timer's work; tests and a restart call it too).</summary>
    [Alias("Evaluate")]
    Task Evaluate();
}

/// <summary>The alarms' names (key 0), so they can be listed.</summary>
[Alias("OrleansIot.IAlarmCatalogGrain")]
public interface IAlarmCatalogGrain : IGrainWithIntegerKey
{
    /// <summary>Adds a name; false when <paramref name="limit"/> alarms exist already (a known name is always accepted).</summary>
    [Alias("Add")]
    Task<bool> Add(string alarmName, int limit);

    /// <summary>Forgets a name.</summary>
    [Alias("Remove")]
    Task Remove(string alarmName);

    /// <summary>Every alarm's name, in order.</summary>
    [Alias("List"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<string>> List();
}
