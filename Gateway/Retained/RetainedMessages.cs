using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Server;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Retained;

/// <summary>
/// This node's replica of the cluster's retained messages. MQTTnet keeps the messages and delivers them on
/// SUBSCRIBE (MQTT semantics: matching filters, wildcards included); this class keeps, per topic, when and where
/// the current value was set, so changes arriving from other nodes in any order converge (newest wins), and
/// writes local changes through to the durable store.
/// </summary>
internal sealed partial class RetainedMessages(MqttServer mqtt, IRetainedMessageStore store, TimeProvider time, ILogger<RetainedMessages> logger)
{
    private readonly Lock _lock = new();

    // topic -> the change that produced the current value; clears are kept (tombstones) so an older set that
    // arrives late cannot bring a cleared message back.
    private readonly Dictionary<string, RetainedChange> _changes = new(StringComparer.Ordinal);

    /// <summary>Loads the durable retained messages into MQTTnet as it starts.</summary>
    public async Task LoadingAsync(LoadingRetainedMessagesEventArgs e)
    {
        var stored = await store.LoadAllAsync(CancellationToken.None);
        lock (_lock)
        {
            foreach (var change in stored)
            {
                _changes[change.Topic] = change;
            }
        }

        e.LoadedRetainedMessages = [.. stored.Where(c => c.Message is not null).Select(c => Routing.ForwardedMessages.ToMqtt(c.Message!, retain: true))];
        LogLoaded(logger, e.LoadedRetainedMessages.Count);
    }

    /// <summary>
    /// A client published with RETAIN on this node (MQTTnet stores it locally itself): record it, write it
    /// through to the store, and return the change to send to the other nodes.
    /// </summary>
    public async Task<RetainedChange> PublishedHereAsync(MqttApplicationMessage message, string senderClientId, byte[] payload, string nodeId)
    {
        // Microsecond precision: what PostgreSQL stores, so stored and in-memory times compare the same.
        var now = time.GetUtcNow();
        var change = new RetainedChange(
            message.Topic,
            payload.Length == 0 ? null : Routing.ForwardedMessages.From(message, senderClientId, payload),
            new DateTimeOffset(now.UtcTicks - (now.UtcTicks % 10), TimeSpan.Zero),
            nodeId);
        lock (_lock)
        {
            _changes[change.Topic] = change;
        }

        await store.SaveAsync(change, CancellationToken.None);
        return change;
    }

    /// <summary>A change made on another node: applied to MQTTnet's store if it is newer than what this node has.</summary>
    public async Task ApplyAsync(RetainedChange change)
    {
        lock (_lock)
        {
            if (_changes.TryGetValue(change.Topic, out var current) && !change.IsNewerThan(current.ModifiedAt, current.OriginNodeId))
            {
                return;
            }

            _changes[change.Topic] = change;
        }

        // An empty payload clears the topic in MQTTnet's store; nothing is delivered to subscribers by this call
        // (live subscribers got the publish itself through normal forwarding).
        var message = change.Message is { } m
            ? Routing.ForwardedMessages.ToMqtt(m, retain: true)
            : new MqttApplicationMessageBuilder().WithTopic(change.Topic).WithRetainFlag().Build();
        await mqtt.UpdateRetainedMessageAsync(message);
    }

    /// <summary>Every retained message (with its change metadata) this node holds.</summary>
    public IReadOnlyList<RetainedChange> Snapshot()
    {
        lock (_lock)
        {
            return [.. _changes.Values];
        }
    }

    /// <summary>Current retained messages (no clears), sorted by topic, for the API.</summary>
    public IReadOnlyList<RetainedChange> Current()
    {
        lock (_lock)
        {
            return [.. _changes.Values.Where(c => c.Message is not null).OrderBy(c => c.Topic, StringComparer.Ordinal)];
        }
    }

    public RetainedChange? Get(string topic)
    {
        lock (_lock)
        {
            return _changes.TryGetValue(topic, out var change) && change.Message is not null ? change : null;
        }
    }

    [LoggerMessage(EventId = 1020, Level = LogLevel.Information, Message = "Loaded {Count} retained messages from the store")]
    private static partial void LogLoaded(ILogger logger, int count);
}
