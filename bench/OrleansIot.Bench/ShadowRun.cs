using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace OrleansIot.Bench;

/// <summary>
/// <c>shadow</c>: N things, each its own MQTT connection, report state over QoS 1 to their classic shadow while a
/// desired value keeps a delta open (so each update is answered on /update/accepted, /update/documents and
/// /update/delta). Measures accepted updates/s and the time from publish to /update/accepted.
/// </summary>
internal static class ShadowRun
{
    public const string Usage = """
        shadow --port P [--host H] [--things 1000] [--duration 10] [--warmup 2] [--rate 0] [--concurrency 64] [--label L]
               [--http H --key API_KEY]
          each thing (registered first through the HTTP API when --http is given, so it is in the fleet index):
          subscribe to its /update/accepted and /update/rejected, set a desired value, then report
          (--rate updates/s per thing; 0 = next update as soon as the previous is answered); prints updates/s,
          rejections and p50/p95/p99 publish-to-accepted latency
        """;

    public static async Task<int> RunAsync(string[] args, CancellationToken stop)
    {
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            values[args[i].TrimStart('-')] = args[i + 1];
        }

        var inv = CultureInfo.InvariantCulture;
        string Get(string name, string fallback) => values.TryGetValue(name, out var v) ? v : fallback;
        int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(inv)), inv);
        var host = Get("host", "127.0.0.1");
        var port = Int("port", 1883);
        var count = Int("things", 1000);
        var duration = TimeSpan.FromSeconds(Int("duration", 10));
        var warmup = TimeSpan.FromSeconds(Int("warmup", 2));
        var rate = double.Parse(Get("rate", "0"), inv);
        var concurrency = Int("concurrency", 64);
        var label = Get("label", $"{host}:{port}");
        var run = Guid.NewGuid().ToString("N")[..6];

        using var http = values.TryGetValue("http", out var httpPort) ? new HttpClient { BaseAddress = new Uri($"http://{host}:{httpPort}") } : null;
        http?.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", Get("key", ""));
        var factory = new MqttClientFactory();
        var things = new Thing[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = stop }, async (i, token) =>
        {
            var name = $"bench-{run}-{i}";
            if (http is not null)
            {
                using var created = await http.PostAsync($"/api/things/{name}", new StringContent("{}", Encoding.UTF8, "application/json"), token);
                created.EnsureSuccessStatusCode();
            }

            var client = factory.CreateMqttClient();
            var thing = new Thing(name, client);
            client.ApplicationMessageReceivedAsync += e =>
            {
                thing.Answer(e.ApplicationMessage.Topic.EndsWith("/accepted", StringComparison.Ordinal));
                return Task.CompletedTask;
            };
            await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer(host, port).WithClientId(name)
                .WithProtocolVersion(MqttProtocolVersion.V500).WithTimeout(TimeSpan.FromSeconds(30)).Build(), token);
            await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
                .WithTopicFilter($"$aws/things/{name}/shadow/update/accepted", MqttQualityOfServiceLevel.AtLeastOnce)
                .WithTopicFilter($"$aws/things/{name}/shadow/update/rejected", MqttQualityOfServiceLevel.AtLeastOnce)
                .Build(), token);
            // A desired value the reports never meet: every report leaves a delta open.
            await thing.UpdateAsync("{\"state\":{\"desired\":{\"target\":20}}}", token);
            things[i] = thing;
        });
        await Console.Error.WriteLineAsync($"{count} things connected and initialised; measuring {duration.TotalSeconds:0}s after {warmup.TotalSeconds:0}s warm-up");

        var latencies = new ConcurrentBag<double>();
        long accepted = 0, rejected = 0;
        var measuring = false;
        using var end = CancellationTokenSource.CreateLinkedTokenSource(stop);
        end.CancelAfter(warmup + duration);
        var clock = Stopwatch.StartNew();
        var loops = things.Select(thing => Task.Run(async () =>
        {
            var n = 0;
            var interval = rate > 0 ? TimeSpan.FromSeconds(1 / rate) : TimeSpan.Zero;
            var next = clock.Elapsed + TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * Math.Max(1, interval.TotalMilliseconds));
            while (!end.IsCancellationRequested)
            {
                if (interval > TimeSpan.Zero)
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
                }

                var started = clock.Elapsed;
                bool ok;
                try
                {
                    ok = await thing.UpdateAsync($"{{\"state\":{{\"reported\":{{\"temp\":{n++},\"target\":19}}}}}}", end.Token);
                }
                catch (Exception) when (end.IsCancellationRequested)
                {
                    // MQTTnet reports a publish cancelled at the end of the run as a timeout.
                    break;
                }

                if (Volatile.Read(ref measuring))
                {
                    if (ok)
                    {
                        Interlocked.Increment(ref accepted);
                        latencies.Add((clock.Elapsed - started).TotalMilliseconds);
                    }
                    else
                    {
                        Interlocked.Increment(ref rejected);
                    }
                }
            }
        })).ToList();

        await Task.Delay(warmup, stop);
        Volatile.Write(ref measuring, true);
        var measureStart = clock.Elapsed;
        await Task.WhenAll(loops);
        var seconds = (clock.Elapsed - measureStart).TotalSeconds;

        var sorted = latencies.Order().ToArray();
        double P(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
        Console.WriteLine(string.Create(inv, $"== {label}: {count} things, {(rate > 0 ? $"{rate:0.#}/s each" : "closed loop")}: {accepted / seconds:0} accepted updates/s, {rejected} rejected, latency p50 {P(0.50):0.0} ms, p95 {P(0.95):0.0} ms, p99 {P(0.99):0.0} ms"));
        Console.WriteLine(string.Create(inv, $"| {label} | {count} | {(rate > 0 ? (rate * count).ToString("0", inv) : "max")} | {accepted / seconds:0} | {rejected} | {P(0.50):0.0} | {P(0.99):0.0} |"));
        foreach (var thing in things)
        {
            thing.Client.Dispose();
        }

        return 0;
    }

    private sealed class Thing(string name, IMqttClient client)
    {
        private TaskCompletionSource<bool>? _answer;

        public IMqttClient Client => client;

        public void Answer(bool accepted) => _answer?.TrySetResult(accepted);

        /// <summary>One update at a time per thing: publish, then wait for /accepted or /rejected.</summary>
        public async Task<bool> UpdateAsync(string json, CancellationToken token)
        {
            var answer = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            _answer = answer;
            await client.PublishAsync(new MqttApplicationMessageBuilder()
                .WithTopic($"$aws/things/{name}/shadow/update")
                .WithPayload(Encoding.UTF8.GetBytes(json))
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
                .Build(), token);
            return await answer.Task.WaitAsync(TimeSpan.FromSeconds(30), token);
        }
    }
}
