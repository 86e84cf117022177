using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions.FleetIndex;

namespace OrleansIot.Grains.FleetIndex;

/// <summary>
/// This node's copy of the index settings (configuration and dynamic groups, parsed once), read from the admin grain
/// at most once per <see cref="FleetIndexOptions.SettingsRefresh"/>: thing grains consult it on every index write
/// without a call to one global grain.
/// </summary>
public sealed class FleetIndexView(IGrainFactory grains, IOptions<FleetIndexOptions> options) : Abstractions.Things.IConnectivityIndexing
{
    private static readonly FleetQueryLimits Unlimited = new(int.MaxValue, int.MaxValue, int.MaxValue, int.MaxValue);
    private readonly Lock _lock = new();
    private Current? _current;
    private long _readAt;
    private Task<Current>? _reading;

    public sealed record Current(FleetIndexSnapshot Snapshot, IReadOnlyList<(string Group, FleetQuery Query)> DynamicGroups)
    {
        public IndexingConfiguration Configuration => Snapshot.Configuration;
    }

    public ValueTask<Current> CurrentAsync()
    {
        lock (_lock)
        {
            if (_current is { } current && Environment.TickCount64 - _readAt < (long)options.Value.SettingsRefresh.TotalMilliseconds)
            {
                return ValueTask.FromResult(current);
            }

            // One read at a time per node; it runs outside any grain's turn (it is shared by the things that wait).
            _reading ??= Task.Run(ReadAsync);
            return new ValueTask<Current>(_reading);
        }
    }

    public async ValueTask<bool> DynamicGroupsFollowConnectivityAsync()
    {
        try
        {
            var current = await CurrentAsync();
            return current.Configuration.Connectivity
                && current.Snapshot.DynamicGroups.Any(g => g.QueryString.Contains("connectivity.", StringComparison.Ordinal));
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            return true;
        }
    }

    /// <summary>Forgets the copy (this node changed the settings: its things see the change at once).</summary>
    public void Invalidate()
    {
        lock (_lock)
        {
            _readAt = long.MinValue / 2;
        }
    }

    /// <summary>A dynamic group's query parsed without the request limits (it was checked when the group was made).</summary>
    public static FleetQuery ParseStored(string queryString) => FleetQuery.Parse(queryString, Unlimited);

    private async Task<Current> ReadAsync()
    {
        try
        {
            var snapshot = await grains.GetGrain<IFleetIndexAdminGrain>(0).Snapshot();
            var previous = _current;
            var current = previous is not null && previous.Snapshot.Version == snapshot.Version
                ? previous
                : new Current(snapshot, [.. snapshot.DynamicGroups.Select(g => (g.ThingGroupName, ParseStored(g.QueryString)))]);
            lock (_lock)
            {
                _current = current;
                _readAt = Environment.TickCount64;
                _reading = null;
            }

            return current;
        }
        catch
        {
            lock (_lock)
            {
                _reading = null;
            }

            throw;
        }
    }
}
