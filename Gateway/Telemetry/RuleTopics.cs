using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Rules;

namespace OrleansIot.Gateway.Telemetry;

/// <summary>
/// Which topics some enabled rule selects (its FROM filter), so that only those messages go on the telemetry stream:
/// the rules are its only reader, and a message no rule selects would cost the stream's queue, cache and delivery for
/// nothing (measured without rules: a third of the burst's p95 latency and about 200 MiB less; docs/benchmarks.md,
/// session 15).
/// The platform's own topics (<c>$aws/things/…/shadow/…</c>, <c>$aws/events/…</c>) only match rules that name them
/// (<c>#</c> and <c>+</c> do not match <c>$</c> topics). A node that has no rule pays one empty-array check per message.
/// <para>
/// Refreshed from the rule catalog every second (when its version changed), and at once on every node when a rule is
/// changed through the API (<see cref="ChangedAsync"/>); with the catalog version each batch carries to the
/// evaluators, a message published after the API answered meets the changed rules.
/// </para>
/// </summary>
internal sealed partial class RuleTopics(IGrainFactory grains, Routing.ClusterRouter router, TimeProvider time, ILogger<RuleTopics> logger) : BackgroundService
{
    private static readonly TimeSpan Every = TimeSpan.FromSeconds(1);

    private readonly SemaphoreSlim _refreshing = new(1, 1);
    private volatile Selection _selection = new([], -1);

    /// <summary>The version of the rule catalog this node read last (-1 before it read it).</summary>
    public long Version => _selection.Version;

    /// <summary>
    /// True when an enabled rule's FROM filter matches this topic. Until the node has read the catalog once (it may
    /// take devices' publishes first), every topic but the platform's is wanted, as if a rule selected <c>#</c>.
    /// </summary>
    public bool Wants(string topic)
    {
        var selection = _selection;
        if (selection.Version < 0)
        {
            return !topic.StartsWith('$');
        }

        foreach (var filter in selection.Filters)
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
        await _refreshing.WaitAsync();
        try
        {
            var catalog = grains.GetGrain<IRuleCatalogGrain>(IRuleCatalogGrain.Key);
            if (await catalog.Version() == _selection.Version)
            {
                return;
            }

            var set = await catalog.Get();
            _selection = new Selection(Filters(set), set.Version);
        }
        finally
        {
            _refreshing.Release();
        }
    }

    /// <summary>
    /// A rule changed through this node: read the catalog here and on every other node before answering. Never
    /// fails (the change is made): a node that could not read it now reads it within a second.
    /// </summary>
    public Task ChangedAsync() => Task.WhenAll(RefreshHereAsync(), router.BroadcastRulesChangedAsync());

    /// <summary>Reads the catalog when it changed; a failure is logged, and the next tick or change tries again.</summary>
    private async Task RefreshHereAsync()
    {
        try
        {
            await RefreshAsync();
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogRefreshFailed(logger, ex);
        }
    }

    /// <summary>
    /// The FROM filters of the enabled rules, once each. Basic Ingest (<c>$aws/rules/{rule}/…</c>) is left out: such
    /// a message always goes on the stream, for its rule alone.
    /// </summary>
    internal static string[] Filters(RuleSet set) =>
        [.. set.Rules
            .Where(r => !r.RuleDisabled && r.TopicPattern is { } p && !p.StartsWith("$aws/rules/", StringComparison.Ordinal))
            .Select(r => r.TopicPattern!)
            .Distinct(StringComparer.Ordinal)];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var timer = new PeriodicTimer(Every, time);
        try
        {
            do
            {
                await RefreshHereAsync();   // a failure (the cluster may still be starting) is logged; next tick
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }
    }

    public override void Dispose()
    {
        _refreshing.Dispose();
        base.Dispose();
    }

    /// <summary>The filters and the catalog version they came from, replaced together.</summary>
    private sealed record Selection(string[] Filters, long Version);

    [LoggerMessage(EventId = 1061, Level = LogLevel.Debug, Message = "Could not read the rule catalog for the rules' topics")]
    private static partial void LogRefreshFailed(ILogger logger, Exception exception);
}
