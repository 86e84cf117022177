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
