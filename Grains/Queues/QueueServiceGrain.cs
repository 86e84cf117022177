using OrleansIot.Grains.Abstractions.Queues;

namespace OrleansIot.Grains.Queues;

/// <summary>Queue calls on any node.</summary>
[GrainType("queue-service"), Orleans.Concurrency.StatelessWorker]
internal sealed class QueueServiceGrain(IQueueStore store) : Grain, IQueueServiceGrain
{
    public async Task<IReadOnlyList<Guid>> Send(string queueName, IReadOnlyList<byte[]> bodies)
    {
        Check(queueName);
        var items = bodies.Select(b => new QueueItem(queueName, Guid.CreateVersion7(), b)).ToList();
        await store.SendAsync(items);
        return [.. items.Select(i => i.MessageId)];
    }

    public Task<IReadOnlyList<QueueMessage>> Receive(string queueName, int max, TimeSpan visibility)
    {
        Check(queueName);
        return store.ReceiveAsync(queueName, max, visibility);
    }

    public Task<int> Delete(string queueName, IReadOnlyList<string> receiptHandles)
    {
        Check(queueName);
        return store.DeleteAsync(queueName, receiptHandles);
    }

    public Task<QueueStats> Stats(string queueName)
    {
        Check(queueName);
        return store.StatsAsync(queueName);
    }

    private static void Check(string queueName)
    {
        if (!QueueNames.IsValid(queueName))
        {
            throw Abstractions.ApiException.Invalid($"Queue name '{queueName}' is invalid: 1 to 80 characters of a-z, A-Z, 0-9, '-' and '_'.");
        }
    }
}
