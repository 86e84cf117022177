using System.Globalization;
using OrleansIot.Grains.Abstractions.Audit;

namespace OrleansIot.Grains.Audit;

/// <summary>Where audit records are kept: PostgreSQL (<c>iot_audit</c>) or, embedded, a bounded memory grain.</summary>
public interface IAuditStore
{
    Task AppendAsync(IReadOnlyList<AuditRecord> records);

    /// <summary>Newest first; <paramref name="before"/> is the paging position (exclusive), null for the newest.</summary>
    Task<(IReadOnlyList<AuditRecord> Records, long? Last)> QueryAsync(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, long? before, int maxResults);
}

[GrainType("audit"), Orleans.Concurrency.StatelessWorker]
internal sealed class AuditGrain(IAuditStore store) : Grain, IAuditGrain
{
    public Task Record(IReadOnlyList<AuditRecord> records) => store.AppendAsync(records);

    public async Task<AuditPage> Query(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, string? nextToken, int maxResults)
    {
        long? before = null;
        if (nextToken is not null)
        {
            before = long.TryParse(nextToken, NumberStyles.None, CultureInfo.InvariantCulture, out var position)
                ? position
                : throw Abstractions.ApiException.Invalid("nextToken is not one this API gave.");
        }

        var (records, last) = await store.QueryAsync(from, to, operation, principal, before, maxResults);
        return new AuditPage(records, records.Count == maxResults && last is { } l ? l.ToString(CultureInfo.InvariantCulture) : null);
    }
}

/// <summary>Embedded mode: the newest audit records in memory (one grain; at most <see cref="Capacity"/>).</summary>
[Alias("OrleansIot.IMemoryAuditGrain")]
internal interface IMemoryAuditGrain : IGrainWithIntegerKey
{
    [Alias("Append")]
    Task Append(IReadOnlyList<AuditRecord> records);

    [Alias("Query"), Orleans.Concurrency.ReadOnly]
    Task<(IReadOnlyList<AuditRecord> Records, long? Last)> Query(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, long? before, int maxResults);
}

[GrainType("memory-audit")]
internal sealed class MemoryAuditGrain : Grain, IMemoryAuditGrain
{
    public const int Capacity = 100_000;

    private readonly LinkedList<(long Position, AuditRecord Record)> _records = new();
    private long _next;

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        DelayDeactivation(TimeSpan.FromDays(3650));   // memory is all there is
        return Task.CompletedTask;
    }

    public Task Append(IReadOnlyList<AuditRecord> records)
    {
        foreach (var record in records)
        {
            _records.AddLast((++_next, record));
            if (_records.Count > Capacity)
            {
                _records.RemoveFirst();
            }
        }

        return Task.CompletedTask;
    }

    public Task<(IReadOnlyList<AuditRecord> Records, long? Last)> Query(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, long? before, int maxResults)
    {
        var page = new List<(long Position, AuditRecord Record)>();
        for (var node = _records.Last; node is not null && page.Count < maxResults; node = node.Previous)
        {
            var (position, record) = node.Value;
            if ((before is null || position < before) && record.Time >= from && record.Time < to
                && (operation is null || record.Operation == operation) && (principal is null || record.Principal == principal))
            {
                page.Add(node.Value);
            }
        }

        return Task.FromResult<(IReadOnlyList<AuditRecord>, long?)>(([.. page.Select(p => p.Record)], page.Count == 0 ? null : page[^1].Position));
    }
}

internal sealed class MemoryAuditStore(IGrainFactory grains) : IAuditStore
{
    public Task AppendAsync(IReadOnlyList<AuditRecord> records) => grains.GetGrain<IMemoryAuditGrain>(0).Append(records);

    public Task<(IReadOnlyList<AuditRecord> Records, long? Last)> QueryAsync(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, long? before, int maxResults) =>
        grains.GetGrain<IMemoryAuditGrain>(0).Query(from, to, operation, principal, before, maxResults);
}
