using OrleansIot.Grains.Abstractions.Queues;

namespace OrleansIot.Grains.Queues;

/// <summary>A message to send: to which queue, its id (a resent id is stored once), and its body.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.QueueItem")]
public sealed record QueueItem(
    [property: Id(0)] string QueueName,
    [property: Id(1)] Guid MessageId,
    [property: Id(2)] byte[] Body);

/// <summary>Queue storage: PostgreSQL (<c>iot_queue_messages</c>) or, embedded, a grain per queue in memory.</summary>
public interface IQueueStore
{
    Task SendAsync(IReadOnlyList<QueueItem> items);

    Task<IReadOnlyList<QueueMessage>> ReceiveAsync(string queueName, int max, TimeSpan visibility);

    Task<int> DeleteAsync(string queueName, IReadOnlyList<string> receiptHandles);

    Task<QueueStats> StatsAsync(string queueName);
}

/// <summary>Queue names as SQS allows them: 1 to 80 of a-z, A-Z, 0-9, '-' and '_'.</summary>
public static class QueueNames
{
    public static bool IsValid(string name) => name.Length is > 0 and <= 80 && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_');
}

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
