using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Alarms;
using OrleansIot.Grains.Abstractions.Audit;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Alarms;

/// <summary>
/// An alarm's state machine on the grains' fake clock, fed by node reports made up here: one datapoint a period,
/// ALARM when the last N all breach, OK when not, INSUFFICIENT_DATA before N (or without data); each change published
/// on the alarm's topic and audited.
/// </summary>
[Collection(FakeClockClusterCollection.Name)]
public sealed class AlarmGrainTests(FakeClockClusterFixture cluster)
{
    private readonly INodeStatsGrain _nodes = cluster.Grains.GetGrain<INodeStatsGrain>(0);

    private Task ReportAsync(string node, int connections, long publishIn) =>
        _nodes.Report(new NodeStats(node, node, cluster.Clock.GetUtcNow(), cluster.Clock.GetUtcNow(), connections, 0, publishIn, 0, 0, 0, 0));

    private async Task<AlarmDescription> NextPeriodAsync(IAlarmGrain alarm, int seconds, Func<Task> report)
    {
        await report();
        cluster.Clock.Advance(TimeSpan.FromSeconds(seconds));
        // The timer's evaluation runs on the grain's turn after the clock moved: wait until it has taken the datapoint.
        var now = cluster.Clock.GetUtcNow();
        return (await Eventually.Get(() => alarm.Describe(), d => d!.LastEvaluatedAt == now, "the period's datapoint"))!;
    }

    [Fact]
    public async Task ConnectionsAlarm_GoesToAlarmAfterNBreachingPeriods_AndBackToOk()
    {
        var (node, name) = (Ids.NewId("node"), Ids.NewId("conn-alarm"));
        var alarm = cluster.Grains.GetGrain<IAlarmGrain>(name);
        await ReportAsync(node, connections: 50, publishIn: 0);
        var created = await alarm.Put(new AlarmDefinition("many devices", "Connections", null, null, null, "GreaterThanThreshold", 40, 10, 2));
        Assert.Equal(AlarmStates.InsufficientData, created.State);

        var first = await NextPeriodAsync(alarm, 10, () => ReportAsync(node, 50, 0));
        Assert.Equal(AlarmStates.InsufficientData, first.State);       // 1 of the 2 datapoints needed

        var second = await NextPeriodAsync(alarm, 10, () => ReportAsync(node, 60, 0));
        Assert.Equal(AlarmStates.Alarm, second.State);
        Assert.Contains("GreaterThanThreshold 40", second.StateReason, StringComparison.Ordinal);

        var third = await NextPeriodAsync(alarm, 10, () => ReportAsync(node, 10, 0));
        Assert.Equal(AlarmStates.Ok, third.State);                     // one of the last two no longer breaches
        Assert.Equal([AlarmStates.Ok, AlarmStates.Alarm], third.History.Take(2).Select(h => h.To));

        var events = RecordingBroker.Shared.On($"$aws/events/alarms/{name}/state").Select(p => JsonNode.Parse(p)!).ToList();
        Assert.Equal([AlarmStates.Alarm, AlarmStates.Ok], events.Select(e => e["state"]!.GetValue<string>()));
        Assert.Equal(AlarmStates.InsufficientData, events[0]["previousState"]!.GetValue<string>());
        Assert.Equal([60.0, 10.0], events[1]["datapoints"]!.AsArray().Select(d => d!.GetValue<double>()));

        var audit = await cluster.Grains.GetGrain<IAuditGrain>(0).Query(DateTimeOffset.MinValue, DateTimeOffset.MaxValue, "SetAlarmState", null, null, 100);
        Assert.Contains(audit.Records, r => r.Target == $"{name}: OK -> ALARM" || r.Target == $"{name}: INSUFFICIENT_DATA -> ALARM");
        Assert.Contains(audit.Records, r => r.Target == $"{name}: ALARM -> OK");
    }

    [Fact]
    public async Task ACounterAlarm_ComparesEachPeriodsGrowth_AndNodesGoneMeanNoData()
    {
        var (node, name) = (Ids.NewId("node"), Ids.NewId("rate-alarm"));
        var alarm = cluster.Grains.GetGrain<IAlarmGrain>(name);
        await ReportAsync(node, 1, publishIn: 1000);
        await alarm.Put(new AlarmDefinition(null, "PublishIn.Success", null, null, null, "LessThanThreshold", 100, 10, 1));

        var baseline = await NextPeriodAsync(alarm, 10, () => ReportAsync(node, 1, 1000));
        Assert.Equal(AlarmStates.InsufficientData, baseline.State);    // the first look only starts the period

        var quiet = await NextPeriodAsync(alarm, 10, () => ReportAsync(node, 1, 1050));
        Assert.Equal(AlarmStates.Alarm, quiet.State);                  // 50 publishes in the period: under 100
        Assert.Equal(50, quiet.RecentDatapoints[^1]);

        var busy = await NextPeriodAsync(alarm, 10, () => ReportAsync(node, 1, 1500));
        Assert.Equal(AlarmStates.Ok, busy.State);
        Assert.Equal(450, busy.RecentDatapoints[^1]);

        // The node stops reporting: its report goes stale (Iot:Alarms:NodeReportFreshness), nothing is known.
        var gone = await NextPeriodAsync(alarm, 20, () => Task.CompletedTask);
        Assert.Equal(AlarmStates.InsufficientData, gone.State);
        Assert.Null(gone.RecentDatapoints[^1]);
        Assert.True(await alarm.Delete());
        Assert.Null(await alarm.Describe());
        Assert.False(await alarm.Delete());
    }

    [Theory]
    [InlineData("Nope", null, "GreaterThanThreshold", 60, 1)]
    [InlineData("Connections", null, "Bigger", 60, 1)]
    [InlineData("Connections", null, "GreaterThanThreshold", 5, 1)]
    [InlineData("Connections", null, "GreaterThanThreshold", 60, 0)]
    [InlineData(null, null, "GreaterThanThreshold", 60, 1)]
    [InlineData("Connections", "thingName:*", "GreaterThanThreshold", 60, 1)]
    public async Task BadDefinitions_AreRefused_AndNothingIsCreated(string? metric, string? query, string comparison, int period, int evaluations)
    {
        var alarm = cluster.Grains.GetGrain<IAlarmGrain>(Ids.NewId("bad"));
        var error = await Assert.ThrowsAsync<ApiException>(() => alarm.Put(new AlarmDefinition(null, metric, query, null, null, comparison, 1, period, evaluations)));
        Assert.Equal(400, error.Status);
        Assert.Null(await alarm.Describe());
    }
}
