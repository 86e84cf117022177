using System.Diagnostics.Metrics;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Gateway.Routing;

/// <summary>
/// Reports this node to the cluster view every <see cref="RoutingOptions.StatsInterval"/>: live connections, and the
/// broker counters of this node's own meter (summed here by a listener) with their rates since the last report.
/// A report that fails is logged and the next one replaces it; a stopping node leaves the view.
/// </summary>
internal sealed partial class NodeStatsReporter(
    IGrainFactory grains,
    ClusterRouter router,
    NodeIdentity node,
    Mqtt.LiveConnections connections,
    GatewayMetrics metrics,
    IOptions<RoutingOptions> options,
    TimeProvider time,
    ILogger<NodeStatsReporter> logger) : BackgroundService
{
    private static readonly string[] Counted = ["Connect.Success", "PublishIn.Success", "PublishOut.Success", "iot.delivery.dropped"];

    private readonly long[] _totals = new long[Counted.Length];

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, metrics.Meter) && Array.IndexOf(Counted, instrument.Name) is var i and >= 0)
            {
                l.EnableMeasurementEvents(instrument, i);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, state) => Interlocked.Add(ref _totals[(int)state!], value));
        listener.Start();

        var started = time.GetUtcNow();
        var (lastAt, lastIn, lastOut) = (started, 0L, 0L);
        using var timer = new PeriodicTimer(options.Value.StatsInterval, time);
        var directory = grains.GetGrain<INodeStatsGrain>(0);
        try
        {
            do
            {
                var now = time.GetUtcNow();
                var (publishIn, publishOut) = (Interlocked.Read(ref _totals[1]), Interlocked.Read(ref _totals[2]));
                var seconds = Math.Max((now - lastAt).TotalSeconds, 0.001);
                try
                {
                    await directory.Report(new NodeStats(
                        router.NodeId, node.Name, started, now, connections.Count, Interlocked.Read(ref _totals[0]), publishIn, publishOut, Interlocked.Read(ref _totals[3]),
                        Math.Round((publishIn - lastIn) / seconds, 1), Math.Round((publishOut - lastOut) / seconds, 1)));
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    LogReportFailed(logger, ex);
                }

                (lastAt, lastIn, lastOut) = (now, publishIn, publishOut);
            }
            while (await timer.WaitForNextTickAsync(stoppingToken));
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
            // stopping
        }

        try
        {
            await directory.Leave(router.NodeId).WaitAsync(TimeSpan.FromSeconds(5), CancellationToken.None);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogReportFailed(logger, ex);   // the view drops it when its reports stop
        }
    }

    [LoggerMessage(EventId = 1720, Level = LogLevel.Warning, Message = "Could not report this node to the cluster view; the next report replaces it")]
    private static partial void LogReportFailed(ILogger logger, Exception exception);
}
