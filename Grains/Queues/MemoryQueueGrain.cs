using OrleansIot.Grains.Abstractions.Queues;

namespace OrleansIot.Grains.Queues;

/// <summary>Embedded mode: one queue in memory (key = queue name).</summary>
[Alias("OrleansIot.IMemoryQueueGrain")]
internal interface IMemoryQueueGrain : IGrainWithStringKey
{
    [Alias("Send")]
    Task Send(IReadOnlyList<QueueItem> items);

    [Alias("Receive")]
    Task<IReadOnlyList<QueueMessage>> Receive(int max, TimeSpan visibility);

    [Alias("Delete")]
    Task<int> Delete(IReadOnlyList<string> receiptHandles);

    [Alias("Stats")]
    Task<QueueStats> Stats();
}

/// <summary>A queue in memory with the same semantics as the PostgreSQL one (visibility timeout, receipts, ids stored once). Nothing here is durable.</summary>
[GrainType("memory-queue")]
internal sealed class MemoryQueueGrain(TimeProvider time) : Grain, IMemoryQueueGrain
{
    private readonly LinkedList<Entry> _messages = new();
    private readonly Dictionary<Guid, LinkedListNode<Entry>> _byId = [];

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        // Memory is all there is: stay active while the silo lives.
        DelayDeactivation(TimeSpan.FromDays(3650));
        return Task.CompletedTask;
    }

    public Task Send(IReadOnlyList<QueueItem> items)
    {
        var now = time.GetUtcNow();
        foreach (var item in items.Where(i => !_byId.ContainsKey(i.MessageId)))
        {
            _byId[item.MessageId] = _messages.AddLast(new Entry(item.MessageId, item.Body, now) { VisibleAt = now });
        }

        return Task.CompletedTask;
    }

    public Task<IReadOnlyList<QueueMessage>> Receive(int max, TimeSpan visibility)
    {
        var now = time.GetUtcNow();
        var received = new List<QueueMessage>();
        foreach (var entry in _messages)
        {
            if (received.Count >= max)
            {
                break;
            }

            if (entry.VisibleAt > now)
            {
                continue;
            }

            entry.VisibleAt = now + visibility;
            entry.ReceiveCount++;
            entry.Receipt = Guid.NewGuid().ToString("N");
            received.Add(new QueueMessage(entry.Id, entry.Receipt, entry.Body, entry.SentAt, entry.ReceiveCount));
        }

        return Task.FromResult<IReadOnlyList<QueueMessage>>(received);
    }

    public Task<int> Delete(IReadOnlyList<string> receiptHandles)
    {
        var handles = receiptHandles.ToHashSet(StringComparer.Ordinal);
        var deleted = 0;
        for (var node = _messages.First; node is not null;)
        {
            var next = node.Next;
            if (node.Value.Receipt is { } receipt && handles.Contains(receipt))
            {
                _messages.Remove(node);
                _byId.Remove(node.Value.Id);
                deleted++;
            }

            node = next;
        }

        return Task.FromResult(deleted);
    }

    public Task<QueueStats> Stats()
    {
        var now = time.GetUtcNow();
        var visible = _messages.Count(m => m.VisibleAt <= now);
        return Task.FromResult(new QueueStats(visible, _messages.Count - visible));
    }

    private sealed record Entry(Guid Id, byte[] Body, DateTimeOffset SentAt)
    {
        public DateTimeOffset VisibleAt { get; set; }

        public int ReceiveCount { get; set; }

        public string? Receipt { get; set; }
    }
}

/// <summary>The embedded queue store: each queue's memory grain.</summary>
internal sealed class MemoryQueueStore(IGrainFactory grains) : IQueueStore
{
    public Task SendAsync(IReadOnlyList<QueueItem> items) =>
        Task.WhenAll(items.GroupBy(i => i.QueueName, StringComparer.Ordinal).Select(g => grains.GetGrain<IMemoryQueueGrain>(g.Key).Send([.. g])));

    public Task<IReadOnlyList<QueueMessage>> ReceiveAsync(string queueName, int max, TimeSpan visibility) =>
        grains.GetGrain<IMemoryQueueGrain>(queueName).Receive(max, visibility);

    public Task<int> DeleteAsync(string queueName, IReadOnlyList<string> receiptHandles) =>
        grains.GetGrain<IMemoryQueueGrain>(queueName).Delete(receiptHandles);

    public Task<QueueStats> StatsAsync(string queueName) => grains.GetGrain<IMemoryQueueGrain>(queueName).Stats();
}
