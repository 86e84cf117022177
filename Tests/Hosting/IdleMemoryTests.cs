using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Hosting;

/// <summary>
/// What an idle device costs a node: 2,000 MQTT 3.1.1 clean-session devices, each subscribed to its own command topic
/// (the shape of a fleet at rest), against a node process of its own; the node's resident memory per device must not
/// regress by more than 25 % from what was measured when this test was written. A regression shows here, in the suite,
/// before a 19,000-connection bench run (docs/benchmarks.md) would show it.
/// </summary>
public sealed class IdleMemoryTests
{
    private const int Devices = 2_000;

    /// <summary>
    /// KiB of RSS per idle subscribed device, measured with this test on the 2-core machine it was written on
    /// (Debug build as the suite runs it; this is the median of 4 runs). 2026-12-07: 26.5, 26.6, 27.4, 30.5 (27.5);
    /// after the thing grain left the connect path: 17.7, 17.8, 19.1, 20.1 (18.5). The bench at 19,000 connections
    /// (Release) measured 15.8–16.0 KiB then. Lower it when the cost goes down (issue 20's goal is 12 KiB), so the
    /// 25 % keep guarding the new figure.
    /// </summary>
    private const double BaselineKiB = 18.5;

    [Fact]
    public async Task AnIdleSubscribedDevice_CostsNoMoreThanMeasured_Plus25Percent()
    {
        // A small gen 0 budget (2 MiB), so what the node has allocated and not yet collected does not pass for the
        // devices' memory: the measurement is what stays, not when the GC last ran.
        await using var node = SiloProcess.Start(new Dictionary<string, string> { ["DOTNET_GCgen0size"] = "0x200000" });
        await node.WaitUntilReadyAsync();

        // Warm the paths a device takes (JIT, pools, grain types) so they are not counted as the devices' cost.
        var warm = await ConnectAsync(node, "warm", 50);
        await DisconnectAsync(warm);
        await Task.Delay(TimeSpan.FromSeconds(2));
        var before = node.ResidentKiB;

        var devices = await ConnectAsync(node, "idle", Devices);
        try
        {
            await Task.Delay(TimeSpan.FromSeconds(3));   // connect-time work (thing records, usage flushes) settles
            var after = node.ResidentKiB;
            var perDevice = (after - before) / (double)Devices;
            Console.WriteLine($"idle memory: {Devices} devices, RSS {before / 1024.0:0} -> {after / 1024.0:0} MiB, {perDevice:0.0} KiB per device (baseline {BaselineKiB} KiB)");
            Assert.True(perDevice <= BaselineKiB * 1.25,
                $"{perDevice:0.0} KiB per idle device, more than 25 % over the {BaselineKiB} KiB measured (RSS {before} -> {after} KiB)");
        }
        finally
        {
            await DisconnectAsync(devices);
        }
    }

    private static async Task<IMqttClient[]> ConnectAsync(SiloProcess node, string prefix, int count)
    {
        var run = Ids.NewId(prefix);
        var clients = new IMqttClient[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, ct) =>
        {
            var client = new MqttClientFactory().CreateMqttClient();
            await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", node.MqttPort).WithClientId($"{run}-{i}")
                .WithProtocolVersion(MqttProtocolVersion.V311).WithKeepAlivePeriod(TimeSpan.FromMinutes(5)).WithTimeout(TimeSpan.FromSeconds(30)).Build(), ct);
            await client.SubscribeAsync($"cmd/{run}-{i}", MqttQualityOfServiceLevel.AtLeastOnce, ct);
            clients[i] = client;
        });
        return clients;
    }

    private static async Task DisconnectAsync(IMqttClient[] clients) =>
        await Parallel.ForEachAsync(clients.Where(c => c is not null), new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (c, ct) =>
        {
            try
            {
                await c.DisconnectAsync(cancellationToken: ct);
            }
            catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
            {
            }

            c.Dispose();
        });
}
