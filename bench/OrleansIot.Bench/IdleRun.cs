using System.Diagnostics;
using System.Globalization;
using MQTTnet;
using MQTTnet.Formatter;

namespace OrleansIot.Bench;

/// <summary>
/// <c>idle</c>: opens N MQTT connections (clean sessions, each its own client id), holds them without traffic and
/// reports the broker's resident memory before and after: the memory cost of an idle device. With <c>--storm S</c>
/// every device that loses its connection (the node restarted, the network went away) reconnects and subscribes
/// again as a device SDK does: after a random pause of up to <c>--jitter</c> seconds, then with exponential back-off
/// (1 s doubling to 30 s, jittered) while refused; the run reports how long until every device was back and how many
/// connects were refused, by reason.
/// </summary>
internal static class IdleRun
{
    public const string Usage = """
        idle --port P [--host H] [--connections 20000] [--concurrency 64] [--hold 10] [--mqtt 4|5] [--subscribe 0|1] [--pid N] [--label L]
             [--storm S] [--jitter 10]
          opens the connections (reporting connects/s), each subscribed to its own command topic with --subscribe 1
          (as devices are), holds them --hold seconds, prints broker RSS per connection; with --storm S it then waits up
          to S seconds for the connections to drop (restart the node meanwhile: bench/storm.sh) and reconnect, and
          reports the time until every device was back and subscribed, and the refused connects by reason
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

        var storm = TimeSpan.FromSeconds(Int("storm", 0));
        var reconnects = storm > TimeSpan.Zero ? new Reconnects(TimeSpan.FromSeconds(Int("jitter", 10)), subscribe, stop) : null;
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
                reconnects?.Watch(client, options, $"idle/{run}/{i}/cmd");
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
        if (reconnects is not null)
        {
            await Console.Error.WriteLineAsync($"{connected} connected; waiting up to {storm.TotalSeconds:0} s for them to drop and come back");
            await reconnects.WaitAsync(connected, storm);
            Console.WriteLine(reconnects.Report(connected));
        }

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

    /// <summary>Reconnects dropped clients as device SDKs do, and keeps the count.</summary>
    private sealed class Reconnects(TimeSpan jitter, bool subscribe, CancellationToken stop)
    {
        private readonly Stopwatch _clock = Stopwatch.StartNew();
        private readonly Dictionary<string, int> _refused = new(StringComparer.Ordinal);
        private long _firstDropTicks = -1;
        private long _lastBackTicks;
        private int _dropped;
        private int _back;
        private int _attempts;

        public void Watch(IMqttClient client, MqttClientOptions options, string topic)
        {
            client.DisconnectedAsync += e =>
            {
                if (e.ClientWasConnected)
                {
                    Interlocked.CompareExchange(ref _firstDropTicks, _clock.Elapsed.Ticks, -1);
                    Interlocked.Increment(ref _dropped);
                    _ = Task.Run(() => ReconnectAsync(client, options, topic));
                }

                return Task.CompletedTask;
            };
        }

        private async Task ReconnectAsync(IMqttClient client, MqttClientOptions options, string topic)
        {
            var backoff = TimeSpan.FromSeconds(1);
            try
            {
                await Task.Delay(jitter * Random.Shared.NextDouble(), stop);
                while (!stop.IsCancellationRequested)
                {
                    Interlocked.Increment(ref _attempts);
                    try
                    {
                        var result = await client.ConnectAsync(options, stop);
                        if (result.ResultCode != MqttClientConnectResultCode.Success)
                        {
                            throw new RefusedException(result.ResultCode.ToString());
                        }

                        if (subscribe)
                        {
                            await client.SubscribeAsync(topic, MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce, stop);
                        }

                        Interlocked.Exchange(ref _lastBackTicks, _clock.Elapsed.Ticks);
                        Interlocked.Increment(ref _back);
                        return;
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        var reason = ex is RefusedException ? ex.Message : ex.GetType().Name;
                        lock (_refused)
                        {
                            _refused[reason] = _refused.GetValueOrDefault(reason) + 1;
                        }

                        await Task.Delay(backoff * (0.5 + Random.Shared.NextDouble()), stop);
                        backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
                    }
                }
            }
            catch (OperationCanceledException)
            {
            }
        }

        /// <summary>Until as many came back as dropped, at least one dropped, and the expected number are back; or the time is up.</summary>
        public async Task WaitAsync(int expected, TimeSpan limit)
        {
            var until = _clock.Elapsed + limit;
            while (_clock.Elapsed < until && !(Volatile.Read(ref _dropped) >= expected && Volatile.Read(ref _back) >= expected))
            {
                await Task.Delay(250, stop);
            }
        }

        public string Report(int expected)
        {
            var inv = CultureInfo.InvariantCulture;
            var first = Interlocked.Read(ref _firstDropTicks);
            var back = Volatile.Read(ref _back);
            var took = first < 0 ? double.NaN : TimeSpan.FromTicks(Interlocked.Read(ref _lastBackTicks) - first).TotalSeconds;
            string refused;
            lock (_refused)
            {
                refused = _refused.Count == 0 ? "none" : string.Join(", ", _refused.OrderByDescending(r => r.Value).Select(r => $"{r.Key} {r.Value}"));
            }

            return string.Create(inv, $"storm: {Volatile.Read(ref _dropped)} of {expected} dropped; {back} back and subscribed {took:0.0} s after the first drop ({back / took:0} reconnects/s); {Volatile.Read(ref _attempts)} connect attempts; failed attempts by reason: {refused}");
        }
    }

    private sealed class RefusedException(string reason) : Exception(reason);
}
