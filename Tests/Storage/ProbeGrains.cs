using System.Collections.Concurrent;
using Orleans.Streams;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Tests.Storage;

// Test-only grains that drive the reminder and stream providers, so the PostgreSQL schema is proven by the real
// Orleans providers rather than by our reading of their contract.

[Alias("OrleansIot.Tests.IReminderProbeGrain")]
public interface IReminderProbeGrain : IGrainWithStringKey
{
    [Alias("Start")] Task Start(TimeSpan due);
    [Alias("Stop")] Task Stop();
    [Alias("Fired")] Task<int> Fired();
}

internal sealed class ReminderProbeGrain : Grain, IReminderProbeGrain, IRemindable
{
    private static readonly ConcurrentDictionary<string, int> Ticks = new();

    public Task Start(TimeSpan due) => this.RegisterOrUpdateReminder("probe", due, TimeSpan.FromSeconds(1));

    public async Task Stop()
    {
        if (await this.GetReminder("probe") is { } reminder)
        {
            await this.UnregisterReminder(reminder);
        }
    }

    public Task<int> Fired() => Task.FromResult(Ticks.GetValueOrDefault(this.GetPrimaryKeyString()));

    public Task ReceiveReminder(string reminderName, TickStatus status)
    {
        Ticks.AddOrUpdate(this.GetPrimaryKeyString(), 1, (_, n) => n + 1);
        return Task.CompletedTask;
    }
}

[Alias("OrleansIot.Tests.IStreamProbeGrain")]
public interface IStreamProbeGrain : IGrainWithStringKey
{
    [Alias("Produce")] Task Produce(int count);
    [Alias("Received")] Task<IReadOnlyList<int>> Received();
}

/// <summary>Produces to and (implicitly subscribed) consumes from the stream with its own key.</summary>
[ImplicitStreamSubscription(Namespace)]
internal sealed class StreamProbeGrain : Grain, IStreamProbeGrain, IAsyncObserver<int>
{
    public const string Namespace = "probe";
    private readonly List<int> _received = [];

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        var stream = this.GetStreamProvider(StreamNames.Provider).GetStream<int>(Namespace, this.GetPrimaryKeyString());
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

    public async Task Produce(int count)
    {
        var stream = this.GetStreamProvider(StreamNames.Provider).GetStream<int>(Namespace, this.GetPrimaryKeyString());
        for (var i = 0; i < count; i++)
        {
            await stream.OnNextAsync(i);
        }
    }

    public Task<IReadOnlyList<int>> Received() => Task.FromResult<IReadOnlyList<int>>([.. _received]);

    public Task OnNextAsync(int item, StreamSequenceToken? token = null)
    {
        _received.Add(item);
        return Task.CompletedTask;
    }

    public Task OnCompletedAsync() => Task.CompletedTask;

    public Task OnErrorAsync(Exception ex) => Task.CompletedTask;
}
