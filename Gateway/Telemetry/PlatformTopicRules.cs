using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Rules;

namespace OrleansIot.Gateway.Telemetry;

/// <summary>
/// Which of the platform's own topics (<c>$aws/things/…/shadow/…</c>, <c>$aws/events/…</c>) some enabled rule
/// selects, so that only those messages go on the telemetry stream for the rules: AWS lets rules read them, and
/// a node that has no such rule pays one empty check per platform message. Refreshed from the rule catalog every
/// second (when its version changed).
/// </summary>
internal sealed partial class PlatformTopicRules(IGrainFactory grains, TimeProvider time, ILogger<PlatformTopicRules> logger) : BackgroundService
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(1);

    private volatile string[] _filters = [];
    private long _version = -1;

    /// <summary>True when an enabled rule's FROM filter matches this <c>$</c> topic.</summary>
    public bool Wants(string topic)
    {
        var filters = _filters;
        if (filters.Length == 0)
        {
            return false;
        }

        foreach (var filter in filters)
        {
            if (TopicFilter.Matches(filter, topic))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>Reads the catalog now when it changed (also what the loop does every second).</summary>
    public async Task RefreshAsync()
    {
        var catalog = grains.GetGrain<IRuleCatalogGrain>(IRuleCatalogGrain.Key);
        if (await catalog.Version() == _version)
        {
            return;
        }

        var set = await catalog.Get();
        _filters = [.. set.Rules
            .Where(r => !r.RuleDisabled && r.TopicPattern is { } p && p.StartsWith('$') && !p.StartsWith("$aws/rules/", StringComparison.Ordinal))
            .Select(r => r.TopicPattern!)
            .Distinct(StringComparer.Ordinal)];
        _version = set.Version;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Every, time);
        try
        {
            do
            {
                try
                {
                    await RefreshAsync();
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogRefreshFailed(logger, ex);   // the cluster may still be starting; next tick
                }
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    [LoggerMessage(EventId = 1061, Level = LogLevel.Debug, Message = "Could not read the rule catalog for platform-topic rules")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
