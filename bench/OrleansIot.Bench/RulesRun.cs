using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using Npgsql;

namespace OrleansIot.Bench;

/// <summary>
/// <c>rules</c>: devices publish QoS 1 telemetry through one rule into the timeseries sink in PostgreSQL (issue 5's
/// load), optionally with extra rules whose filters do not match (the per-message cost of many rules). Measures
/// acknowledged publishes/s, publish-to-PUBACK latency, and how far the sink's rows trail the acknowledgements:
/// for 20 sampled devices, every 100 ms it records (time, their messages acknowledged) and their row count in the
/// sink (an index lookup, cheap whatever the table holds); the lag of a sample is the time until the row count
/// reached its acknowledged count. Every acknowledged message makes one row, so publish-to-row ≈
/// publish-to-PUBACK + that lag.
/// </summary>
internal static class RulesRun
{
    public const string Usage = """
        rules --port P --http H --pg CONNECTION --key API_KEY [--host 127.0.0.1] [--devices 1000] [--rate 20] [--duration 10]
              [--warmup 3] [--extra-rules 0] [--inflight 20] [--label L]
          creates the rule SELECT temperature, topic(2) AS device FROM 'dt/+/telemetry' WHERE temperature > 0 with a
          timeseries action (and --extra-rules more rules whose filters do not match), then each device publishes
          --rate QoS 1 messages/s to dt/{device}/telemetry; prints acknowledged msg/s, publish-to-PUBACK p50/p99 and
          the sink lag p50/p99; deletes its rules at the end
        """;

    private const string Sql = "SELECT temperature, topic(2) AS device FROM 'dt/+/telemetry' WHERE temperature > 0";

    public static async Task<int> RunAsync(string[] args, CancellationToken stop)
    {
        var a = new BenchArgs(args);
        var inv = CultureInfo.InvariantCulture;
        string Get(string name, string fallback) => a.Get(name, fallback);
        int Int(string name, int fallback) => a.Int(name, fallback);
        var host = Get("host", "127.0.0.1");
        var port = Int("port", 1883);
        var pg = Get("pg", "");
        var devices = Int("devices", 1000);
        var rate = double.Parse(Get("rate", "20"), inv);
        var duration = TimeSpan.FromSeconds(Int("duration", 10));
        var warmup = TimeSpan.FromSeconds(Int("warmup", 3));
        var extra = Int("extra-rules", 0);
        var inflight = Int("inflight", 20);
        var label = Get("label", $"{host}:{port}");
        if (pg.Length == 0 || !a.Has("http") || !a.Has("key"))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var run = Guid.NewGuid().ToString("N")[..6];
        using var http = new HttpClient { BaseAddress = new Uri($"http://{host}:{Int("http", 8080)}") };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Get("key", ""));
        var rules = new List<string>();
        async Task CreateRuleAsync(string name, string sql)
        {
            var body = "{\"sql\":\"" + sql + "\",\"actions\":[{\"timeseries\":{\"thingName\":\"${topic(2)}\"}}]}";
            (await http.PostAsync($"/api/rules/{name}", new StringContent(body, Encoding.UTF8, "application/json"), stop)).EnsureSuccessStatusCode();
            rules.Add(name);
        }

        try
        {
            await CreateRuleAsync($"bench_{run}", Sql);
            for (var k = 0; k < extra; k++)
            {
                await CreateRuleAsync($"bench_{run}_x{k}", $"SELECT temperature FROM 'other/{k}/+/telemetry' WHERE temperature > 0");
            }

            return await MeasureAsync(host, port, pg, devices, rate, duration, warmup, inflight, extra, label, run, stop);
        }
        finally
        {
            foreach (var rule in rules)
            {
                await http.DeleteAsync($"/api/rules/{rule}", CancellationToken.None);
            }
        }
    }

    private static async Task<int> MeasureAsync(string host, int port, string pg, int devices, double rate, TimeSpan duration, TimeSpan warmup,
        int inflight, int extra, string label, string run, CancellationToken stop)
    {
        var inv = CultureInfo.InvariantCulture;
        var factory = new MqttClientFactory();
        var clients = new IMqttClient[devices];
        await Parallel.ForAsync(0, devices, new ParallelOptions { MaxDegreeOfParallelism = 64, CancellationToken = stop }, async (i, token) =>
        {
            var client = factory.CreateMqttClient();
            await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer(host, port).WithClientId($"b{run}-{i}")
                .WithProtocolVersion(MqttProtocolVersion.V500).WithTimeout(TimeSpan.FromSeconds(30)).Build(), token);
            clients[i] = client;
        });
        await Console.Error.WriteLineAsync($"{devices} devices connected; {rate * devices:0} msg/s offered; measuring {duration.TotalSeconds:0}s after {warmup.TotalSeconds:0}s warm-up");

        // Rules reach the evaluators within a second: wait for the first row before measuring.
        await using var dataSource = NpgsqlDataSource.Create(pg);
        var sampled = Enumerable.Range(0, Math.Min(20, devices)).Select(k => k * devices / Math.Min(20, devices)).ToHashSet();
        var sampledNames = sampled.Select(i => $"b{run}-{i}").ToArray();
        async Task<long> RowsAsync()
        {
            await using var command = dataSource.CreateCommand("SELECT count(*) FROM iot_telemetry WHERE thing_name = ANY(@names)");
            command.Parameters.AddWithValue("names", sampledNames);
            return (long)(await command.ExecuteScalarAsync(stop))!;
        }

        var clock = Stopwatch.StartNew();
        long sent = 0, acked = 0, failed = 0, sampledAcked = 0;
        var latencies = new ConcurrentBag<double>();
        var measuring = false;
        using var end = CancellationTokenSource.CreateLinkedTokenSource(stop);
        end.CancelAfter(warmup + duration);
        var loops = clients.Select((client, i) => Task.Run(async () =>
        {
            var isSample = sampled.Contains(i);
            var topic = $"dt/b{run}-{i}/telemetry";
            var interval = TimeSpan.FromSeconds(1 / rate);
            var next = clock.Elapsed + (interval * Random.Shared.NextDouble());
            using var window = new SemaphoreSlim(inflight);
            var n = 0;
            while (!end.IsCancellationRequested)
            {
                var wait = next - clock.Elapsed;
                if (wait > TimeSpan.Zero)
                {
                    try
                    {
                        await Task.Delay(wait, end.Token);
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }

                next += interval;
                try
                {
                    await window.WaitAsync(end.Token);
                }
                catch (OperationCanceledException)
                {
                    break;
                }

                var started = clock.Elapsed;
                var counted = Volatile.Read(ref measuring);
                Interlocked.Increment(ref sent);
                _ = PublishAsync(client, topic, $"{{\"temperature\":{20 + (n++ % 10)},\"seq\":{n}}}").ContinueWith(t =>
                {
                    window.Release();
                    if (t.IsCompletedSuccessfully && t.Result)
                    {
                        Interlocked.Increment(ref acked);
                        if (isSample)
                        {
                            Interlocked.Increment(ref sampledAcked);
                        }

                        if (counted)
                        {
                            latencies.Add((clock.Elapsed - started).TotalMilliseconds);
                        }
                    }
                    else
                    {
                        Interlocked.Increment(ref failed);
                    }
                }, TaskScheduler.Default);
            }
        })).ToList();

        // Samples: (time, acknowledged so far) every 100 ms, and the sink's rows.
        var samples = new List<(double At, long Acked)>();
        var rows = new List<(double At, long Rows)>();
        await Task.Delay(warmup, stop);
        Volatile.Write(ref measuring, true);
        var measureStart = clock.Elapsed;
        var ackedAtStart = Interlocked.Read(ref acked);
        var sampler = Task.Run(async () =>
        {
            while (!end.IsCancellationRequested)
            {
                samples.Add((clock.Elapsed.TotalMilliseconds, Interlocked.Read(ref sampledAcked)));
                await Task.Delay(100, CancellationToken.None);
            }
        }, CancellationToken.None);
        var counter = Task.Run(async () =>
        {
            // Keeps counting after the load stops, until the sink has every acknowledged message (or 60 s).
            var deadline = clock.Elapsed + warmup + duration + TimeSpan.FromSeconds(60);
            while (clock.Elapsed < deadline)
            {
                var count = await RowsAsync();
                rows.Add((clock.Elapsed.TotalMilliseconds, count));
                if (end.IsCancellationRequested && count >= Interlocked.Read(ref sampledAcked))
                {
                    break;
                }

                await Task.Delay(100, CancellationToken.None);
            }
        }, CancellationToken.None);
        await Task.WhenAll(loops);
        var seconds = (clock.Elapsed - measureStart).TotalSeconds;
        var ackedInWindow = Interlocked.Read(ref acked) - ackedAtStart;
        await sampler;
        await Task.Delay(2000, CancellationToken.None);   // the last PUBACKs
        await counter;

        var lags = new List<double>();
        foreach (var (at, count) in samples)
        {
            var reached = rows.FirstOrDefault(r => r.At >= at && r.Rows >= count);
            lags.Add(reached == default ? double.PositiveInfinity : reached.At - at);
        }

        var sorted = latencies.Order().ToArray();
        lags.Sort();
        static double P(IReadOnlyList<double> s, double q) => BenchArgs.Quantile(s, q);
        var finalRows = rows.Count == 0 ? 0 : rows[^1].Rows;
        Console.WriteLine(string.Create(inv, $"== {label}: {devices} devices x {rate:0.#}/s QoS 1, {1 + extra} rules: {ackedInWindow / seconds:0} acked msg/s (sent {sent}, acked {acked}, failed {failed}), PUBACK p50 {P(sorted, 0.5):0.0} ms p99 {P(sorted, 0.99):0.0} ms; sink lag p50 {P(lags, 0.5):0} ms p99 {P(lags, 0.99):0} ms; sampled devices' rows {finalRows} of {sampledAcked} acked"));
        Console.WriteLine(string.Create(inv, $"| {label} | {devices} | {rate * devices:0} | {1 + extra} | {ackedInWindow / seconds:0} | {P(sorted, 0.5):0.0} | {P(sorted, 0.99):0.0} | {P(lags, 0.5):0} | {P(lags, 0.99):0} | {finalRows}/{sampledAcked} |"));
        foreach (var client in clients)
        {
            client.Dispose();
        }

        return 0;
    }

    private static async Task<bool> PublishAsync(IMqttClient client, string topic, string payload)
    {
        var result = await client.PublishAsync(new MqttApplicationMessageBuilder()
            .WithTopic(topic)
            .WithPayload(Encoding.UTF8.GetBytes(payload))
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());
        return result.IsSuccess;
    }
}
