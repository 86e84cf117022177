using System.Collections.Concurrent;
using OrleansIot.Grains.Abstractions.Policies;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>The access changes grains announced, for TestingHost silos (no gateway there to apply them).</summary>
public sealed class RecordingAccessChanges : IAccessChangeNotifier
{
    public static RecordingAccessChanges Shared { get; } = new();

    public ConcurrentQueue<AccessChange> Changes { get; } = new();

    public Task Changed(AccessChange change)
    {
        Changes.Enqueue(change);
        return Task.CompletedTask;
    }
}
