using System.Threading.Channels;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// Group commit for appends: whatever callers queued while a writer was busy goes into the next statement (up to
/// <c>maxItems</c>), with <c>writers</c> statements in flight, and each caller's task completes when the statement
/// holding its items committed (or fails with its error). Under load the cost is per statement, not per caller;
/// when idle a write goes out at once (no timer).
/// </summary>
internal sealed class GroupCommit<T> : IAsyncDisposable
{
    private readonly Channel<Pending> _pending = Channel.CreateUnbounded<Pending>();
    private readonly Func<List<T>, Task> _write;
    private readonly string _store;
    private readonly int _maxItems;
    private readonly Task[] _writers;

    /// <param name="store">The store's name in the storage metrics (<see cref="StorageMetrics"/>).</param>
    public GroupCommit(string store, Func<List<T>, Task> write, int maxItems, int writers)
    {
        _store = store;
        _write = write;
        _maxItems = maxItems;
        _writers = [.. Enumerable.Range(0, writers).Select(_ => Task.Run(WriteLoopAsync))];
    }

    public Task AddAsync(IReadOnlyList<T> items)
    {
        if (items.Count == 0)
        {
            return Task.CompletedTask;
        }

        var pending = new Pending(items, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        ObjectDisposedException.ThrowIf(!_pending.Writer.TryWrite(pending), this);
        return pending.Done.Task;
    }

    public async ValueTask DisposeAsync()
    {
        _pending.Writer.TryComplete();
        await Task.WhenAll(_writers);
    }

    private async Task WriteLoopAsync()
    {
        var callers = new List<Pending>();
        var items = new List<T>(_maxItems);
        while (await _pending.Reader.WaitToReadAsync())
        {
            callers.Clear();
            items.Clear();

            // A caller's items stay together; the first caller goes in even when it alone is over the limit.
            while (_pending.Reader.TryPeek(out var next) && (items.Count == 0 || items.Count + next.Items.Count <= _maxItems) && _pending.Reader.TryRead(out next))
            {
                callers.Add(next);
                items.AddRange(next.Items);
            }

            if (callers.Count == 0)
            {
                continue;
            }

            try
            {
                await StorageMetrics.TimeAsync(_store, items.Count, async () =>
                {
                    await _write(items);
                    return true;
                });
                callers.ForEach(c => c.Done.TrySetResult());
            }
            catch (Exception ex)
            {
                callers.ForEach(c => c.Done.TrySetException(ex));
            }
        }
    }

    private sealed record Pending(IReadOnlyList<T> Items, TaskCompletionSource Done);
}
