using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Grains.Queues;

namespace OrleansIot.Grains.Rules;

internal static partial class RuleActions
{
    /// <summary>
    /// <c>{"queue": {"queueName": "orders-${topic(2)}"}}</c>: sends the output to a durable named queue (our SQS) that
    /// other services consume with receive and delete (<c>/api/queues</c>). The message id derives from the stream
    /// message, the rule and the queue, so a redelivered stream message is queued once (until it is consumed).
    /// </summary>
    private static CompiledAction Queue(JsonObject body)
    {
        var name = Template(body, "queue", "queueName");
        return new CompiledAction("QueueAction", c => name.Render(c.Message), (c, onFailure) =>
        {
            var queueName = name.Render(c.Message);
            if (!QueueNames.IsValid(queueName))
            {
                throw new InvalidOperationException($"queue: '{queueName}' is not a queue name (1 to 80 of a-z, A-Z, 0-9, '-', '_').");
            }

            var store = c.Services.Services.GetRequiredService<IQueueStore>();
            c.Batch.Add(store, c.RuleName, "QueueAction", items => store.SendAsync(items),
                new QueueItem(queueName, MessageIdFor(c.MessageId, c.RuleName, queueName), c.Output), onFailure);
            return Task.CompletedTask;
        }, Deferred: true);
    }

    private static Guid MessageIdFor(Guid message, string rule, string queue)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Encoding.UTF8.GetBytes($"{message:N}/{rule}/{queue}"), hash);
        return new Guid(hash[..16]);
    }
}
