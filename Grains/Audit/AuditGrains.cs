using System.Globalization;
using OrleansIot.Grains.Abstractions.Audit;

namespace OrleansIot.Grains.Audit;

/// <summary>
/// A place in the audit log: records are ordered by their time, then by the order they were stored (records are
/// written after the answer, so two calls' records may be stored out of order; their times are not).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.AuditCursor")]
public readonly record struct AuditCursor([property: Id(0)] DateTimeOffset Time, [property: Id(1)] long Id);

/// <summary>Where audit records are kept: PostgreSQL (<c>iot_audit</c>) or, embedded, a bounded memory grain.</summary>
public interface IAuditStore
{
    Task AppendAsync(IReadOnlyList<AuditRecord> records);

    /// <summary>Newest first by time; <paramref name="before"/> is the paging position (exclusive), null for the newest.</summary>
    Task<(IReadOnlyList<AuditRecord> Records, AuditCursor? Last)> QueryAsync(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, AuditCursor? before, int maxResults);
}

// Reentrant: it holds no state, and the store group-commits whatever records wait together. Turn by turn, each of the
// few workers a node has waited for its own commit, so a busy control plane (a few hundred calls per second) queued
// its records for longer than the response timeout and lost them.
[GrainType("audit"), Orleans.Concurrency.StatelessWorker, Orleans.Concurrency.Reentrant]
internal sealed class AuditGrain(IAuditStore store) : Grain, IAuditGrain
{
    public Task Record(IReadOnlyList<AuditRecord> records) => store.AppendAsync(records);

    public async Task<AuditPage> Query(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, string? nextToken, int maxResults)
    {
        AuditCursor? before = null;
        if (nextToken is not null)
        {
            var parts = nextToken.Split('.');
            before = parts.Length == 2
                && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var ticks) && ticks <= DateTimeOffset.MaxValue.UtcTicks
                && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var id)
                ? new AuditCursor(new DateTimeOffset(ticks, TimeSpan.Zero), id)
                : throw Abstractions.ApiException.Invalid("nextToken is not one this API gave.");
        }

        var (records, last) = await store.QueryAsync(from, to, operation, principal, before, maxResults);
        return new AuditPage(records, records.Count == maxResults && last is { } l
            ? string.Create(CultureInfo.InvariantCulture, $"{l.Time.UtcTicks}.{l.Id}")
            : null);
    }
}

/// <summary>Embedded mode: the newest audit records in memory (one grain; at most <see cref="Capacity"/>).</summary>
[Alias("OrleansIot.IMemoryAuditGrain")]
internal interface IMemoryAuditGrain : IGrainWithIntegerKey
{
    [Alias("Append")]
    Task Append(IReadOnlyList<AuditRecord> records);

    [Alias("Query"), Orleans.Concurrency.ReadOnly]
    Task<(IReadOnlyList<AuditRecord> Records, AuditCursor? Last)> Query(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, AuditCursor? before, int maxResults);
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

    public Task<(IReadOnlyList<AuditRecord> Records, AuditCursor? Last)> Query(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, AuditCursor? before, int maxResults)
    {
        var page = _records
            .Select(r => (Cursor: new AuditCursor(r.Record.Time, r.Position), r.Record))
            .Where(r => r.Record.Time >= from && r.Record.Time < to
                && (operation is null || r.Record.Operation == operation) && (principal is null || r.Record.Principal == principal)
                && (before is not { } b || r.Cursor.Time < b.Time || (r.Cursor.Time == b.Time && r.Cursor.Id < b.Id)))
            .OrderByDescending(r => r.Cursor.Time).ThenByDescending(r => r.Cursor.Id)
            .Take(maxResults)
            .ToList();
        return Task.FromResult<(IReadOnlyList<AuditRecord>, AuditCursor?)>(([.. page.Select(p => p.Record)], page.Count == 0 ? null : page[^1].Cursor));
    }
}

internal sealed class MemoryAuditStore(IGrainFactory grains) : IAuditStore
{
    public Task AppendAsync(IReadOnlyList<AuditRecord> records) => grains.GetGrain<IMemoryAuditGrain>(0).Append(records);

    public Task<(IReadOnlyList<AuditRecord> Records, AuditCursor? Last)> QueryAsync(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, AuditCursor? before, int maxResults) =>
        grains.GetGrain<IMemoryAuditGrain>(0).Query(from, to, operation, principal, before, maxResults);
}
