namespace OrleansIot.Tests.Infrastructure;

/// <summary>Registers and removes an hourly reminder: the cluster's reminder service is ready when this succeeds.</summary>
[Alias("OrleansIot.Tests.IClusterReminderProbeGrain")]
public interface IClusterReminderProbeGrain : IGrainWithStringKey
{
    [Alias("Probe")]
    Task Probe();
}

[GrainType("test-cluster-reminder-probe")]
public sealed class ClusterReminderProbeGrain : Grain, IClusterReminderProbeGrain, IRemindable
{
    public async Task Probe() => await this.UnregisterReminder(await this.RegisterOrUpdateReminder("ready", TimeSpan.FromHours(1), TimeSpan.FromHours(1)));

    public Task ReceiveReminder(string reminderName, Orleans.Runtime.TickStatus status) => Task.CompletedTask;
}

/// <summary>When a test cluster's reminder service is ready.</summary>
public static class ReminderProbe
{
    /// <summary>
    /// Waits until a reminder can be registered. The reminder service finishes starting after the silo does: a test
    /// that registered a reminder 30 s into a busy suite was refused with "Reminder Service is still initializing".
    /// </summary>
    public static Task WaitUntilReadyAsync(IGrainFactory grains) =>
        Eventually.True(
            async () =>
            {
                // A refusal propagates: Eventually keeps the last one, so a timeout says why the service never started.
                await grains.GetGrain<IClusterReminderProbeGrain>("ready").Probe();
                return true;
            },
            "the reminder service to start",
            TimeSpan.FromSeconds(120));
}
