using System.Threading.Channels;
using MQTTnet;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>A message as a watcher sees it: copied out of the broker's buffers when it matched.</summary>
internal sealed record WatchedMessage(string Topic, byte[] Payload, int Qos, bool Retain, string SenderClientId, DateTimeOffset Time);

/// <summary>
/// One watch of a topic filter (the console's live view: AWS's MQTT test client). It is not a subscriber: nothing is
/// promised to it. Its queue is bounded; a watcher that reads slower than the topic is written loses the newest
/// messages, and the count of what it lost is part of what it reads (<see cref="TakeDropped"/>), so it is never silent.
/// </summary>
internal sealed class TopicWatch
{
    private readonly Channel<WatchedMessage> _queue;
    private readonly System.Diagnostics.Metrics.Counter<long>? _droppedCounter;
    private long _dropped;
    private long _missed;

    public TopicWatch(string filter, int capacity, System.Diagnostics.Metrics.Counter<long>? droppedCounter = null)
    {
        Filter = filter;
        _droppedCounter = droppedCounter;
        Id = "$watch/" + Guid.NewGuid().ToString("N");
        _queue = Channel.CreateBounded<WatchedMessage>(new BoundedChannelOptions(capacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,   // TryWrite fails when full: counted, never blocks a publisher
        });
    }

    /// <summary>The watch's name in the router's route table (as a client id, which no MQTT client can hold: '$').</summary>
    public string Id { get; }

    public string Filter { get; }

    public ChannelReader<WatchedMessage> Messages => _queue.Reader;

    internal void Offer(WatchedMessage message)
    {
        if (!_queue.Writer.TryWrite(message))
        {
            Interlocked.Increment(ref _dropped);
            Interlocked.Increment(ref _missed);
            _droppedCounter?.Add(1);
        }
    }

    /// <summary>Every message this watch dropped (logged when it ends).</summary>
    public long Missed => Interlocked.Read(ref _missed);

    /// <summary>The messages dropped since the last call (the watcher is told, then the count starts again).</summary>
    public long TakeDropped() => Interlocked.Exchange(ref _dropped, 0);
}

/// <summary>
/// This node's topic watches. <see cref="LocalSubscribers.Deliver"/> offers every message it delivers (published here or
/// forwarded from another node); the HTTP endpoint that holds a watch also announces its filter to the router as a
/// route, so other nodes forward matching messages here as they do for a subscriber. With no watch the cost on the
/// delivery path is one read of a count.
/// </summary>
internal sealed class TopicWatches(TimeProvider time, GatewayMetrics? metrics = null)
{
    private readonly Lock _lock = new();
    private readonly TopicTree<TopicWatch> _filters = new();
    private volatile int _count;

    [ThreadStatic]
    private static HashSet<TopicWatch>? t_matches;

    public int Count => _count;

    /// <summary>Starts a watch, or null when this node already has <paramref name="maxWatches"/>.</summary>
    public TopicWatch? Start(string filter, int capacity, int maxWatches)
    {
        lock (_lock)
        {
            if (_count >= maxWatches)
            {
                return null;
            }

            var watch = new TopicWatch(filter, capacity, metrics?.WatchDropped);
            _filters.Add(filter, watch);
            _count++;
            return watch;
        }
    }

    public void End(TopicWatch watch)
    {
        lock (_lock)
        {
            if (_filters.Remove(watch.Filter, watch))
            {
                _count--;
            }
        }
    }

    /// <summary>Hands a copy of the message to every watch whose filter matches its topic.</summary>
    public void Offer(MqttApplicationMessage message, string senderClientId)
    {
        if (_count == 0)
        {
            return;
        }

        var matches = t_matches ??= [];
        matches.Clear();
        lock (_lock)
        {
            _filters.Match(message.Topic, matches);
        }

        if (matches.Count == 0)
        {
            return;
        }

        var copy = new WatchedMessage(message.Topic, System.Buffers.BuffersExtensions.ToArray(message.Payload), (int)message.QualityOfServiceLevel, message.Retain, senderClientId, time.GetUtcNow());
        foreach (var watch in matches)
        {
            watch.Offer(copy);
        }

        matches.Clear();
    }
}
