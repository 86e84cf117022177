using System.Collections.Concurrent;
using System.Text;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>What grains in the TestingHost cluster published (no gateway there), for tests to wait on by topic.</summary>
public sealed class RecordingBroker : IBrokerPublisher
{
    public static RecordingBroker Shared { get; } = new();

    private readonly ConcurrentQueue<(string Topic, string Payload)> _published = new();

    public void Publish(string topic, byte[] payload, int qos) => _published.Enqueue((topic, Encoding.UTF8.GetString(payload)));

    /// <summary>Payloads published to <paramref name="topic"/>, oldest first.</summary>
    public IReadOnlyList<string> On(string topic) => [.. _published.Where(p => p.Topic == topic).Select(p => p.Payload)];
}
