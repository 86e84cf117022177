using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Retained;

/// <summary>
/// Where retained messages outlive the nodes (PostgreSQL mode). Writes are newest-wins per topic, so nodes that
/// write the same topic concurrently end with the same row.
/// </summary>
public interface IRetainedMessageStore
{
    /// <summary>Every stored retained message.</summary>
    Task<IReadOnlyList<RetainedChange>> LoadAllAsync(CancellationToken cancellationToken);

    /// <summary>Stores a set (message present) or a clear (message absent) unless a newer change is stored.</summary>
    Task SaveAsync(RetainedChange change, CancellationToken cancellationToken);
}

/// <summary>The embedded default: retained messages live in the nodes' memory only.</summary>
internal sealed class InMemoryRetainedMessageStore : IRetainedMessageStore
{
    public Task<IReadOnlyList<RetainedChange>> LoadAllAsync(CancellationToken cancellationToken) => Task.FromResult<IReadOnlyList<RetainedChange>>([]);

    public Task SaveAsync(RetainedChange change, CancellationToken cancellationToken) => Task.CompletedTask;
}
