using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Alarms;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Alarms, our CloudWatch alarms: <c>PUT /api/alarms/{alarmName}</c> (PutMetricAlarm) on a broker metric summed over
/// the cluster or on a fleet statistic, <c>GET /api/alarms</c> (DescribeAlarms), <c>GET /api/alarms/{alarmName}</c>
/// (with its history), <c>DELETE /api/alarms/{alarmName}</c>. A state change is published on
/// <c>$aws/events/alarms/{alarmName}/state</c>, where subscribers and rules (<c>SELECT * FROM '$aws/events/alarms/+/state'</c>)
/// see it, and is audited.
/// </summary>
public static partial class AlarmsApi
{
    public static IEndpointRouteBuilder MapAlarmsApi(this IEndpointRouteBuilder endpoints)
    {
        var alarms = endpoints.MapGroup("/alarms").WithTags("Alarms").ChangedBy(Grains.Abstractions.ApiKeys.ApiKeyRoles.Operator);
        alarms.MapPut("/{alarmName}", PutAsync).WithName("PutMetricAlarm");
        alarms.MapGet("/{alarmName}", DescribeAsync).WithName("DescribeAlarm");
        alarms.MapGet("", ListAsync).WithName("DescribeAlarms");
        alarms.MapDelete("/{alarmName}", DeleteAsync).WithName("DeleteAlarms");
        return endpoints;
    }

    /// <summary>A fleet statistic: the things <c>queryString</c> matches, <c>statistic</c> (count by default) of <c>aggregationField</c>.</summary>
    public sealed record FleetQueryBody(string? QueryString, string? AggregationField, string? Statistic);

    public sealed record PutMetricAlarmBody(
        string? AlarmDescription, string? MetricName, FleetQueryBody? FleetQuery, string? ComparisonOperator, double? Threshold, int? Period, int? EvaluationPeriods);

    public sealed record DescribeAlarmsResponse(IReadOnlyList<AlarmDescription> MetricAlarms);

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,128}$")]
    private static partial Regex AlarmNamePattern();

    private static IAlarmGrain Alarm(IGrainFactory grains, string alarmName) =>
        AlarmNamePattern().IsMatch(alarmName) ? grains.GetGrain<IAlarmGrain>(alarmName)
        : throw ApiException.Invalid("alarmName must be 1 to 128 letters, digits, '_', '.' or '-'.");

    private static async Task<Ok<AlarmDescription>> PutAsync(string alarmName, PutMetricAlarmBody body, IGrainFactory grains)
    {
        var alarm = Alarm(grains, alarmName);
        var definition = new AlarmDefinition(
            body.AlarmDescription,
            body.MetricName,
            body.FleetQuery is { } q ? q.QueryString ?? throw ApiException.Invalid("fleetQuery.queryString is required.") : null,
            body.FleetQuery?.AggregationField,
            body.FleetQuery is null ? null : body.FleetQuery.Statistic ?? "count",
            body.ComparisonOperator ?? throw ApiException.Invalid("comparisonOperator is required."),
            body.Threshold ?? throw ApiException.Invalid("threshold is required."),
            body.Period ?? 60,
            body.EvaluationPeriods ?? 1);
        return TypedResults.Ok(await alarm.Put(definition));
    }

    private static async Task<Ok<AlarmDescription>> DescribeAsync(string alarmName, IGrainFactory grains) =>
        TypedResults.Ok(await Alarm(grains, alarmName).Describe() ?? throw ApiException.NotFound($"Alarm {alarmName} cannot be found."));

    private static async Task<Ok<DescribeAlarmsResponse>> ListAsync(IGrainFactory grains)
    {
        var names = await grains.GetGrain<IAlarmCatalogGrain>(0).List();
        var alarms = await Task.WhenAll(names.Select(n => grains.GetGrain<IAlarmGrain>(n).Describe()));
        return TypedResults.Ok(new DescribeAlarmsResponse([.. alarms.OfType<AlarmDescription>()]));
    }

    private static async Task<Ok<EmptyResponse>> DeleteAsync(string alarmName, IGrainFactory grains) =>
        await Alarm(grains, alarmName).Delete() ? TypedResults.Ok(new EmptyResponse()) : throw ApiException.NotFound($"Alarm {alarmName} cannot be found.");
}
