namespace OrleansIot.Grains.Abstractions.Queues;

/// <summary>
/// A received message (SQS's <c>ReceiveMessage</c>): it stays in the queue, invisible to other consumers, until it
/// is deleted with <see cref="ReceiptHandle"/> (the acknowledgement) or its visibility timeout passes and it is
/// delivered again (<see cref="ReceiveCount"/> grows).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.QueueMessage")]
public sealed record QueueMessage(
    [property: Id(0)] Guid MessageId,
    [property: Id(1)] string ReceiptHandle,
    [property: Id(2)] byte[] Body,
    [property: Id(3)] DateTimeOffset SentAt,
    [property: Id(4)] int ReceiveCount);

/// <summary>How many messages wait (visible) and how many are received but not yet deleted (in flight).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.QueueStats")]
public sealed record QueueStats(
    [property: Id(0)] long Visible,
    [property: Id(1)] long InFlight);

/// <summary>Durable named queues (the rules' <c>queue</c> action; our SQS). Any node answers; the store does the work.</summary>
[Alias("OrleansIot.IQueueServiceGrain")]
public interface IQueueServiceGrain : IGrainWithIntegerKey
{
    /// <summary>Sends messages to a queue; returns their ids.</summary>
    [Alias("Send")]
    Task<IReadOnlyList<Guid>> Send(string queueName, IReadOnlyList<byte[]> bodies);

    /// <summary>Receives up to <paramref name="max"/> visible messages, oldest first, hiding them for <paramref name="visibility"/>.</summary>
    [Alias("Receive")]
    Task<IReadOnlyList<QueueMessage>> Receive(string queueName, int max, TimeSpan visibility);

    /// <summary>Deletes (acknowledges) received messages by receipt handle; a stale handle deletes nothing. Returns how many were deleted.</summary>
    [Alias("Delete")]
    Task<int> Delete(string queueName, IReadOnlyList<string> receiptHandles);

    /// <summary>The queue's counts.</summary>
    [Alias("Stats")]
    Task<QueueStats> Stats(string queueName);
}
