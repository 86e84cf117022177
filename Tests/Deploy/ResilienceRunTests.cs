using System.Diagnostics;
using System.Globalization;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Deploy;

/// <summary>
/// The short resilience run of issue 19, in the suite: <c>bench/resilience-run.sh rolling</c> starts three nodes on
/// PostgreSQL behind haproxy (<c>deploy/local/cluster.sh</c>), and while a QoS 1 publisher, a persistent subscriber, a
/// rule writing to a PostgreSQL table and a shadow writer work through the balancer, restarts every node in turn. The
/// script fails if anything acknowledged was lost (at the subscriber or in the rule's table), if a shadow's version
/// went back, or if nothing was acknowledged at all. Its own ports (below the range the OS hands out, apart from the
/// README's defaults) and its own PostgreSQL; one collection with the README test, the other local cluster.
/// </summary>
[Collection(LocalClusterScripts.Name)]
public sealed class ResilienceRunTests
{
    private static string Root => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", ".."));

    [Fact]
    public async Task RollingRestartThroughTheBalancer_UnderQos1Load_LosesNothingAcknowledged()
    {
        var pgDirectory = Path.Combine(Path.GetTempPath(), $"orleansiot-resilience-pg-{Guid.NewGuid():N}");
        var environment = new Dictionary<string, string>
        {
            ["IOT_SILO_DLL"] = SiloProcess.SiloDll,
            ["IOT_PG_PORT"] = FreePorts.Next().ToString(CultureInfo.InvariantCulture),
            ["IOT_PG_DIR"] = pgDirectory,
            ["IOT_LB_MQTT"] = "21880", ["IOT_LB_MQTTS"] = "28880", ["IOT_LB_HTTP"] = "28000", ["IOT_LB_HTTPS"] = "28440",
            ["IOT_MQTT_BASE"] = "21883", ["IOT_HTTP_BASE"] = "28080", ["IOT_MQTTS_BASE"] = "28883", ["IOT_HTTPS_BASE"] = "28443",
            ["IOT_SILO_BASE"] = "21111", ["IOT_GATEWAY_BASE"] = "23000",
        };
        try
        {
            var (exitCode, output) = await RunAsync(environment, "bench/resilience-run.sh", "rolling");
            Assert.True(exitCode == 0, output);
            Assert.Contains("acknowledged and never received: 0", output, StringComparison.Ordinal);
            Assert.Contains("acknowledged and never stored: 0", output, StringComparison.Ordinal);
        }
        finally
        {
            await RunAsync(environment, "deploy/local/postgres.sh", "stop");
        }
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(Dictionary<string, string> environment, string script, string argument)
    {
        var start = new ProcessStartInfo("bash", [script, argument])
        {
            WorkingDirectory = Root,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (name, value) in environment)
        {
            start.Environment[name] = value;
        }

        start.Environment.Remove("ConnectionStrings__Iot");
        using var process = Process.Start(start)!;
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{script} {argument} ran over 5 minutes:\n{await output}\n{await errors}");
        }

        return (process.ExitCode, $"{await output}\n{await errors}");
    }
}
