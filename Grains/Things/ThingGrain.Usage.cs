using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Grains.Things;

// Usage per UTC day, next to the running totals: messages and bytes (from the gateways' flushes), minutes connected
// (a connection's span, split at midnight, added when it ends; an open one is counted up to now when read), shadow
// requests, rule executions (from the rule evaluators' flushes) and ended job executions (from the thing's jobs). Written as usage is (a timer after the first change; at once with connectivity changes).
internal sealed partial class ThingGrain
{
    public async Task<IReadOnlyList<DailyUsage>> GetDailyUsage(DateOnly from, DateOnly to)
    {
        var days = new List<DailyUsage>();
        if (to < from)
        {
            return days;
        }

        // The connection still open: its minutes so far, per day, not stored.
        var open = new Dictionary<int, double>();
        var (c, _) = await ConnectivityNowAsync();
        if (c.Connected && c.Since is { } since)
        {
            foreach (var (day, seconds) in SplitByDay(since, time.GetUtcNow()))
            {
                open[day] = seconds;
            }
        }

        for (var day = from.DayNumber; day <= to.DayNumber; day++)
        {
            var u = state.State.Days.GetValueOrDefault(day);
            var seconds = (u?.ConnectedSeconds ?? 0) + open.GetValueOrDefault(day);
            days.Add(new DailyUsage(
                DateOnly.FromDayNumber(day).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
                u?.MessagesIn ?? 0, u?.BytesIn ?? 0, u?.MessagesOut ?? 0, u?.BytesOut ?? 0, u?.MessagesDropped ?? 0,
                Math.Round(seconds / 60, 2), u?.ShadowOperations ?? 0, u?.RuleExecutions ?? 0, u?.JobExecutions ?? 0));
        }

        return days;
    }

    /// <summary>Counts a gateway's usage in the totals and in today's bucket.</summary>
    private void CountUsage(UsageDelta delta)
    {
        Add(state.State.Usage, delta);
        Add(Day(time.GetUtcNow()), delta);
    }

    /// <summary>A connection's span, split at UTC midnights.</summary>
    private void CountConnected(DateTimeOffset since, DateTimeOffset until)
    {
        foreach (var (day, seconds) in SplitByDay(since, until))
        {
            Day(day).ConnectedSeconds += seconds;
        }
    }

    /// <summary>A shadow request answered (accepted or refused): metered as AWS meters shadow operations.</summary>
    private void CountShadowOperation()
    {
        Day(time.GetUtcNow()).ShadowOperations++;
        UsageChanged();
    }

    /// <summary>Usage changed: written by a one-shot timer (cheap to lose a little of; connectivity writes at once).</summary>
    private void UsageChanged()
    {
        _usageDirty = true;
        _persistTimer ??= this.RegisterGrainTimer(
            static (grain, _) => grain.PersistUsageAsync(),
            this,
            new GrainTimerCreationOptions(_usagePersistInterval, Timeout.InfiniteTimeSpan) { KeepAlive = false });
    }

    private DayUsageState Day(DateTimeOffset at) => Day(DateOnly.FromDateTime(at.UtcDateTime).DayNumber);

    private DayUsageState Day(int dayNumber)
    {
        var days = state.State.Days;
        if (!days.TryGetValue(dayNumber, out var day))
        {
            day = days[dayNumber] = new DayUsageState();
            var oldest = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime).DayNumber - options.Value.UsageRetentionDays + 1;
            while (days.Count > 0 && days.Keys.First() < oldest)
            {
                days.Remove(days.Keys.First());
            }
        }

        return day;
    }

    private static IEnumerable<(int Day, double Seconds)> SplitByDay(DateTimeOffset since, DateTimeOffset until)
    {
        var start = since.UtcDateTime;
        var end = until.UtcDateTime;
        while (start < end)
        {
            var midnight = start.Date.AddDays(1);
            var stop = midnight < end ? midnight : end;
            yield return (DateOnly.FromDateTime(start).DayNumber, (stop - start).TotalSeconds);
            start = stop;
        }
    }
}
