using System.Diagnostics;
using System.Globalization;
using MQTTnet;
using MQTTnet.Formatter;

namespace OrleansIot.Bench;

/// <summary>
/// <c>idle</c>: opens N MQTT connections (clean sessions, each its own client id), holds them without traffic and
/// reports the broker's resident memory before and after: the memory cost of an idle device.
/// </summary>
internal static class IdleRun
{
    public const string Usage = """
        idle --port P [--host H] [--connections 20000] [--concurrency 64] [--hold 10] [--mqtt 4|5] [--subscribe 0|1] [--pid N] [--label L]
          opens the connections (reporting connects/s), each subscribed to its own command topic with --subscribe 1
          (as devices are), holds them --hold seconds, prints broker RSS per connection
        """;

    public static async Task<int> RunAsync(string[] args, CancellationToken stop)
    {
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            values[args[i].TrimStart('-')] = args[i + 1];
        }

        string Get(string name, string fallback) => values.TryGetValue(name, out var v) ? v : fallback;
        int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);
        var host = Get("host", "127.0.0.1");
        var port = Int("port", 1883);
        var count = Int("connections", 20_000);
        var concurrency = Int("concurrency", 64);
        var hold = TimeSpan.FromSeconds(Int("hold", 10));
        var version = Int("mqtt", 4) == 5 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311;
        var label = Get("label", $"{host}:{port}");
        var subscribe = Int("subscribe", 0) == 1;
        var server = ServerProcess.Find(values.TryGetValue("pid", out var pid) ? int.Parse(pid, CultureInfo.InvariantCulture) : null, host, port);
        var before = server?.Memory();

        var factory = new MqttClientFactory();
        var clients = new IMqttClient[count];
        var failed = 0;
        var run = Guid.NewGuid().ToString("N")[..6];
        var watch = Stopwatch.StartNew();
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = stop }, async (i, token) =>
        {
            var client = factory.CreateMqttClient();
            var options = new MqttClientOptionsBuilder()
                .WithTcpServer(host, port)
                .WithClientId($"idle-{run}-{i}")
                .WithProtocolVersion(version)
                .WithKeepAlivePeriod(TimeSpan.FromMinutes(5))
                .WithTimeout(TimeSpan.FromSeconds(30))
                .Build();
            try
            {
                await client.ConnectAsync(options, token);
                if (subscribe)
                {
                    await client.SubscribeAsync($"idle/{run}/{i}/cmd", MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce, token);
                }

                clients[i] = client;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                Interlocked.Increment(ref failed);
                client.Dispose();
            }

            if ((i + 1) % 5000 == 0)
            {
                await Console.Error.WriteLineAsync(string.Create(CultureInfo.InvariantCulture, $"{i + 1} connecting, {watch.Elapsed.TotalSeconds:0.0}s"));
            }
        });
        var connectSeconds = watch.Elapsed.TotalSeconds;
        var connected = clients.Count(c => c is { IsConnected: true });
        await Task.Delay(hold, stop);
        var after = server?.Memory();
        var stillConnected = clients.Count(c => c is { IsConnected: true });

        var inv = CultureInfo.InvariantCulture;
        Console.WriteLine(string.Create(inv, $"== {label}: {connected} of {count} connected in {connectSeconds:0.0}s ({connected / connectSeconds:0} connects/s), {failed} failed, {stillConnected} still connected after {hold.TotalSeconds:0}s"));
        if (before is { } b && after is { } a)
        {
            var perConnection = (a.RssKiB - b.RssKiB) / (double)Math.Max(1, connected);
            Console.WriteLine(string.Create(inv, $"server pid {server!.Pid} ({server.Name()}): RSS before {b.RssKiB / 1024.0:0.0} MiB, after {a.RssKiB / 1024.0:0.0} MiB, peak {a.PeakKiB / 1024.0:0.0} MiB; {perConnection:0.0} KiB per connection"));
            Console.WriteLine(string.Create(inv, $"| {label} | {connected} | {connected / connectSeconds:0} | {b.RssKiB / 1024.0:0} | {a.RssKiB / 1024.0:0} | {perConnection:0.0} |"));
        }

        foreach (var client in clients)
        {
            client?.Dispose();
        }

        return connected == count ? 0 : 1;
    }
}
