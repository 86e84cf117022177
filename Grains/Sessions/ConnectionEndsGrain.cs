using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Things;

namespace OrleansIot.Grains.Sessions;

/// <summary>
/// Keeps connection ends for their things (<see cref="IConnectionEndsGrain"/>) and records them, a batch per tick,
/// <c>Iot:Things:KeptEndsDelay</c> after it has them. An end that fails stays, at the back, and is tried again; a reminder
/// brings the grain back after its silo went (it is unregistered once nothing is kept).
/// </summary>
[GrainType("connection-ends")]
internal sealed partial class ConnectionEndsGrain(
    [PersistentState("connection-ends", StorageNames.Default)] IPersistentState<ConnectionEndsState> state,
    IOptions<ThingOptions> options,
    ILogger<ConnectionEndsGrain> logger) : Grain, IConnectionEndsGrain, IRemindable
{
    private const string WakeReminder = "record-kept-ends";

    /// <summary>Ends recorded per tick; 64 keepers at one tick a second make about 1,000 thing activations a second.</summary>
    internal const int BatchSize = 16;

    private static readonly TimeSpan Tick = TimeSpan.FromSeconds(1);

    private long _partition;
    private IGrainTimer? _timer;
    private bool _reminded;
    private int _recorded;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _partition = this.GetPrimaryKeyLong();
        if (state.State.Kept.Count > 0)
        {
            _reminded = true;   // registered when they were kept
            StartRecording();
        }

        return base.OnActivateAsync(cancellationToken);
    }

    public async Task Keep(IReadOnlyList<KeptEnd> ends)
    {
        var kept = state.State.Kept;
        var known = kept.Select(k => (k.ClientId, k.Closed.SessionId)).ToHashSet();
        var added = false;
        foreach (var end in ends)
        {
            if (known.Add((end.ClientId, end.Closed.SessionId)))
            {
                kept.Add(end);
                added = true;
            }
        }

        if (!added)
        {
            return;
        }

        await state.WriteStateAsync();
        if (!_reminded)
        {
            // The reminder outlives this activation: after a restart it activates the grain, which goes on recording.
            await this.RegisterOrUpdateReminder(WakeReminder, options.Value.KeptEndsDelay + TimeSpan.FromMinutes(1), TimeSpan.FromMinutes(1));
            _reminded = true;
        }

        StartRecording();
    }

    public Task Wake() => Task.CompletedTask;

    public Task<int> Count() => Task.FromResult(state.State.Kept.Count);

    public Task ReceiveReminder(string reminderName, TickStatus status) => Task.CompletedTask;   // activating is the point

    private void StartRecording() => _timer ??= this.RegisterGrainTimer(
        static (grain, _) => grain.RecordBatchAsync(),
        this,
        new GrainTimerCreationOptions(options.Value.KeptEndsDelay, Tick) { KeepAlive = true });

    /// <summary>Records the oldest kept ends on their things; what fails stays kept, at the back.</summary>
    private async Task RecordBatchAsync()
    {
        var kept = state.State.Kept;
        var batch = kept.Take(BatchSize).ToList();
        var failures = await Task.WhenAll(batch.Select(RecordAsync));
        if (failures.FirstOrDefault(f => f is not null) is { } failure)
        {
            LogRecordFailed(logger, failure, failures.Count(f => f is not null), _partition);
        }

        // What failed goes to the back, so an end that keeps failing (a thing that cannot be activated) holds up no
        // other; it stays kept, and counted (Count), until it is recorded.
        var taken = batch.ToHashSet();
        var failed = batch.Where((_, i) => failures[i] is not null).ToList();
        kept.RemoveAll(taken.Contains);
        kept.AddRange(failed);
        _recorded += batch.Count - failed.Count;
        if (failed.Count < batch.Count)
        {
            await state.WriteStateAsync();
        }

        if (kept.Count == 0)
        {
            _timer?.Dispose();
            _timer = null;
            LogRecorded(logger, _recorded, _partition);
            _recorded = 0;
            if (await this.GetReminder(WakeReminder) is { } reminder)
            {
                await this.UnregisterReminder(reminder);
            }

            _reminded = false;
        }
    }

    /// <summary>Records one end on its thing: null, or why it could not.</summary>
    private async Task<Exception?> RecordAsync(KeptEnd end)
    {
        try
        {
            await GrainFactory.Reference<IThingGrain>(end.ClientId).Disconnected(end.Closed);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return ex;
        }
    }

    [LoggerMessage(EventId = 2016, Level = LogLevel.Debug, Message = "Recorded {Count} kept connection ends on their things (keeper {Partition})")]
    private static partial void LogRecorded(ILogger logger, int count, long partition);

    [LoggerMessage(EventId = 2017, Level = LogLevel.Warning, Message = "Could not record {Count} kept connection ends on their things (keeper {Partition}); tried again at the next tick")]
    private static partial void LogRecordFailed(ILogger logger, Exception exception, int count, long partition);
}

// Stored as JSON (System.Text.Json) in PostgreSQL mode: the property names are the storage schema. Append, never rename.
[GenerateSerializer, Alias("OrleansIot.ConnectionEndsState")]
public sealed class ConnectionEndsState
{
    /// <summary>Ends not yet recorded on their things, oldest first.</summary>
    [Id(0)] public List<KeptEnd> Kept { get; set; } = [];
}
