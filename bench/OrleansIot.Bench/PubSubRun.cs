using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace OrleansIot.Bench;

/// <summary>
/// One bounded pub/sub run: connect subscribers, then publishers; publish for warm-up + duration; wait for the
/// deliveries in flight; report throughput, loss and publish-to-delivery latency (both ends in this process, so
/// one monotonic clock).
/// </summary>
internal sealed class PubSubRun(BenchOptions options)
{
    private static readonly TimeSpan DrainTimeout = TimeSpan.FromSeconds(10);
    private const int ConnectConcurrency = 64;

    private readonly string _run = Guid.NewGuid().ToString("N")[..6];
    private long _sent;
    private long _sentMeasured;
    private long _received;
    private long _firstReceived;
    private long _lastReceived;
    private long _receivedMeasured;
    private long _publishErrors;
    private long _measureFrom = long.MaxValue;   // Stopwatch timestamp; messages sent before it are warm-up
    private long _measureUntil = long.MaxValue;
    private readonly System.Collections.Concurrent.ConcurrentQueue<long> _intervalSamples = new();   // --report-every

    private string TopicOf(int publisher) => options.Shape switch
    {
        Shape.P2p => $"bench/{_run}/p2p/{publisher}",
        Shape.FanIn => $"bench/{_run}/in/{publisher}",
        _ => $"bench/{_run}/out",
    };

    private string FilterOf(int subscriber) => options.Shape switch
    {
        Shape.P2p => $"bench/{_run}/p2p/{subscriber}",
        Shape.FanIn => $"bench/{_run}/in/+",
        _ => $"bench/{_run}/out",
    };

    private int DeliveriesPerMessage => options.Shape == Shape.P2p ? 1 : options.Subscribers;

    public async Task<int> ExecuteAsync(CancellationToken cancel)
    {
        var server = ServerProcess.Find(options.ServerPid, options.Host, options.Port);
        var memoryBefore = server?.Memory();
        Console.Error.WriteLine($"run {_run}: {options.Shape} {options.Publishers} pub / {options.Subscribers} sub, QoS {options.Qos}, {options.PayloadBytes} B, MQTT {(options.MqttVersion == 5 ? "5" : "3.1.1")}, {options.Warmup.TotalSeconds:0}s warm-up + {options.Duration.TotalSeconds:0}s against {options.Host}:{options.Port}" +
            (server is null ? "" : $" (server pid {server.Pid} {server.Name()}, RSS {memoryBefore?.RssKiB / 1024.0:0.0} MiB)"));

        var latencies = new List<long>[options.Subscribers];
        var subscribers = new IMqttClient[options.RawSubscribers ? 0 : options.Subscribers];
        var raw = new RawSubscriber[options.RawSubscribers ? options.Subscribers : 0];
        var publishers = new IMqttClient[options.Publishers];
        try
        {
            await ForEachAsync(options.Subscribers, async i =>
            {
                latencies[i] = [];
                if (options.RawSubscribers)
                {
                    var own = latencies[i];
                    raw[i] = await RawSubscriber.ConnectAsync(options.SubscriberHost, options.SubscriberPort, $"bench-{_run}-s{i}", FilterOf(i), options.Qos, p => OnReceived(p, own), cancel);
                    return;
                }

                subscribers[i] = await ConnectAsync($"bench-{_run}-s{i}", options.SubscriberHost, options.SubscriberPort, cancel);
                var samples = latencies[i];
                subscribers[i].ApplicationMessageReceivedAsync += e =>
                {
                    OnReceived(e.ApplicationMessage.Payload, samples);
                    return Task.CompletedTask;
                };
                var result = await subscribers[i].SubscribeAsync(
                    new MqttClientSubscribeOptionsBuilder().WithTopicFilter(FilterOf(i), (MqttQualityOfServiceLevel)options.Qos).Build(), cancel);
                if ((int)result.Items.First().ResultCode > 2)
                {
                    throw new InvalidOperationException($"subscribe refused: {result.Items.First().ResultCode}");
                }
            });
            await ForEachAsync(options.Publishers, async i => publishers[i] = await ConnectAsync($"bench-{_run}-p{i}", options.Host, options.Port, cancel));
            Console.Error.WriteLine($"connected {options.Subscribers + options.Publishers} clients");

            var start = Stopwatch.GetTimestamp();
            _measureFrom = start + (long)(options.Warmup.TotalSeconds * Stopwatch.Frequency);
            _measureUntil = _measureFrom + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
            using var publishing = CancellationTokenSource.CreateLinkedTokenSource(cancel);
            publishing.CancelAfter(options.Warmup + options.Duration);
            var progress = options.ReportEvery > TimeSpan.Zero ? IntervalsAsync(server, publishing.Token) : ProgressAsync(server, publishing.Token);
            var cpuFrom = CpuAfterWarmupAsync(server, cancel);
            await Task.WhenAll(publishers.Select((p, i) => PublishLoopAsync(p, i, publishing.Token)));
            await publishing.CancelAsync();   // all publishers done (--max-messages): no need to wait out the duration
            await progress;

            var expected = Interlocked.Read(ref _sentMeasured) * DeliveriesPerMessage;
            var drainUntil = Stopwatch.GetTimestamp() + (long)(DrainTimeout.TotalSeconds * Stopwatch.Frequency);
            while (Interlocked.Read(ref _receivedMeasured) < expected && Stopwatch.GetTimestamp() < drainUntil && !cancel.IsCancellationRequested)
            {
                await Task.Delay(50, CancellationToken.None);
            }

            var cpu = server?.CpuSeconds() - await cpuFrom;
            Report(server, memoryBefore, latencies, expected, cpu);
            return 0;
        }
        finally
        {
            await Task.WhenAll(raw.Where(r => r is not null).Select(r => r.DisposeAsync().AsTask()));
            await Task.WhenAll(publishers.Concat(subscribers).Where(c => c is not null).Select(async c =>
            {
                try
                {
                    if (c.IsConnected)
                    {
                        await c.DisconnectAsync();
                    }
                }
                catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
                {
                }

                c.Dispose();
            }));
        }
    }

    private async Task<IMqttClient> ConnectAsync(string clientId, string host, int port, CancellationToken cancel)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var builder = new MqttClientOptionsBuilder()
            .WithTcpServer(host, port)
            .WithClientId(clientId)
            .WithCleanSession()
            .WithTimeout(TimeSpan.FromSeconds(30))
            .WithProtocolVersion(options.MqttVersion == 5 ? MqttProtocolVersion.V500 : MqttProtocolVersion.V311);
        var result = await client.ConnectAsync(builder.Build(), cancel);
        if (result.ResultCode != MqttClientConnectResultCode.Success)
        {
            throw new InvalidOperationException($"connect of {clientId} refused: {result.ResultCode}");
        }

        return client;
    }

    private async Task PublishLoopAsync(IMqttClient client, int index, CancellationToken stop)
    {
        var topic = TopicOf(index);
        var qos = (MqttQualityOfServiceLevel)options.Qos;
        using var inFlight = new SemaphoreSlim(options.InFlight);
        var pending = new List<Task>();
        var started = Stopwatch.GetTimestamp();
        long sequence = 0;
        try
        {
            while (!stop.IsCancellationRequested && (options.MaxMessages == 0 || sequence < options.MaxMessages))
            {
                if (options.RatePerPublisher > 0)
                {
                    var due = started + (long)(sequence / options.RatePerPublisher * Stopwatch.Frequency);
                    var wait = due - Stopwatch.GetTimestamp();
                    if (wait > 0)
                    {
                        await Task.Delay(TimeSpan.FromSeconds((double)wait / Stopwatch.Frequency), stop);
                    }
                }

                var payload = new byte[options.PayloadBytes];
                var sentAt = Stopwatch.GetTimestamp();
                BinaryPrimitives.WriteInt64LittleEndian(payload, sentAt);
                var message = new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(qos).Build();
                sequence++;
                if (qos == MqttQualityOfServiceLevel.AtMostOnce || options.InFlight == 1)
                {
                    await PublishOneAsync(client, message, sentAt);
                }
                else
                {
                    await inFlight.WaitAsync(stop);
                    pending.Add(PublishReleasingAsync(client, message, sentAt, inFlight, stop));
                    pending.RemoveAll(t => t.IsCompleted);
                }
            }
        }
        catch (OperationCanceledException) when (stop.IsCancellationRequested)
        {
        }

        await Task.WhenAll(pending);
    }

    private async Task PublishReleasingAsync(IMqttClient client, MqttApplicationMessage message, long sentAt, SemaphoreSlim inFlight, CancellationToken stop)
    {
        try
        {
            await PublishOneAsync(client, message, sentAt);
        }
        finally
        {
            inFlight.Release();
        }
    }

    private async Task PublishOneAsync(IMqttClient client, MqttApplicationMessage message, long sentAt)
    {
        try
        {
            // Publishes already on the wire complete even when the run ends (no cancellation mid-packet).
            var result = await client.PublishAsync(message, CancellationToken.None);
            if (!result.IsSuccess)
            {
                Interlocked.Increment(ref _publishErrors);
                return;
            }
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException or InvalidOperationException)
        {
            Interlocked.Increment(ref _publishErrors);
            return;
        }

        Interlocked.Increment(ref _sent);
        if (sentAt >= _measureFrom && sentAt < _measureUntil)
        {
            Interlocked.Increment(ref _sentMeasured);
        }
    }

    private void OnReceived(System.Buffers.ReadOnlySequence<byte> payload, List<long> samples)
    {
        Span<byte> head = stackalloc byte[8];
        System.Buffers.BuffersExtensions.CopyTo(payload.Slice(0, Math.Min(8, payload.Length)), head);
        OnReceived(head[..(int)Math.Min(8, payload.Length)], samples);
    }

    private void OnReceived(ReadOnlySpan<byte> payload, List<long> samples)
    {
        var now = Stopwatch.GetTimestamp();
        Interlocked.Increment(ref _received);
        if (payload.Length < 8)
        {
            return;
        }

        var sentAt = BinaryPrimitives.ReadInt64LittleEndian(payload);
        if (options.ReportEvery > TimeSpan.Zero)
        {
            _intervalSamples.Enqueue(now - sentAt);
        }

        if (sentAt >= _measureFrom && sentAt < _measureUntil)
        {
            Interlocked.Increment(ref _receivedMeasured);
            Interlocked.CompareExchange(ref _firstReceived, now, 0);
            InterlockedMax(ref _lastReceived, now);
            samples.Add(now - sentAt);   // one subscriber's callbacks run one at a time
        }
    }

    private async Task ProgressAsync(ServerProcess? server, CancellationToken stop)
    {
        long lastSent = 0, lastReceived = 0;
        var second = 0;
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                second++;
                var sent = Interlocked.Read(ref _sent);
                var received = Interlocked.Read(ref _received);
                var rss = server?.Memory() is { } m ? $" rss={m.RssKiB / 1024.0:0}MiB" : "";
                var phase = second <= options.Warmup.TotalSeconds ? "warm-up" : "measure";
                Console.Error.WriteLine($"  {second,4}s {phase} sent {sent - lastSent,7}/s  received {received - lastReceived,8}/s  errors {Interlocked.Read(ref _publishErrors)}{rss}");
                (lastSent, lastReceived) = (sent, received);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>
    /// A soak's record (--report-every): one Markdown table row per interval, warm-up included, with the interval's
    /// rates and delivery latency, the server's RSS and, from its /metrics (--metrics), its GC heap after the last
    /// collection and the GC pause time and gen 2 collections within the interval.
    /// </summary>
    private async Task IntervalsAsync(ServerProcess? server, CancellationToken stop)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        if (options.MetricsKey is { Length: > 0 } key)
        {
            http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
        }

        var inv = CultureInfo.InvariantCulture;
        long lastSent = 0, lastReceived = 0;
        var lastGc = await GcAsync(http);
        var started = Stopwatch.GetTimestamp();
        Console.WriteLine("| t (s) | sent/s | received/s | p50 ms | p99 ms | max ms | server RSS MiB | GC heap MiB | GC pause ms | gen 2 GCs |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|");
        using var timer = new PeriodicTimer(options.ReportEvery);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                var seconds = options.ReportEvery.TotalSeconds;
                var sent = Interlocked.Read(ref _sent);
                var received = Interlocked.Read(ref _received);
                var samples = new List<long>();
                while (_intervalSamples.TryDequeue(out var sample))
                {
                    samples.Add(sample);
                }

                samples.Sort();
                string Ms(double fraction) => samples.Count == 0 ? "-" : (samples[Math.Min(samples.Count - 1, (int)(fraction * samples.Count))] * 1000.0 / Stopwatch.Frequency).ToString("0.00", inv);
                var gc = await GcAsync(http);
                var rss = server?.Memory() is { } m ? (m.RssKiB / 1024.0).ToString("0", inv) : "-";
                var heap = gc is { } g ? (g.HeapBytes / 1048576.0).ToString("0", inv) : "-";
                var pause = gc is { } now && lastGc is { } before ? ((now.PauseSeconds - before.PauseSeconds) * 1000).ToString("0.0", inv) : "-";
                var gen2 = gc is { } now2 && lastGc is { } before2 ? (now2.Gen2 - before2.Gen2).ToString(inv) : "-";
                var t = (Stopwatch.GetTimestamp() - started) / (double)Stopwatch.Frequency;
                Console.WriteLine(string.Create(inv, $"| {t:0} | {(sent - lastSent) / seconds:0} | {(received - lastReceived) / seconds:0} | {Ms(0.5)} | {Ms(0.99)} | {Ms(1.0)} | {rss} | {heap} | {pause} | {gen2} |"));
                (lastSent, lastReceived, lastGc) = (sent, received, gc ?? lastGc);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    private async Task<(double HeapBytes, double PauseSeconds, double Gen2)?> GcAsync(HttpClient http)
    {
        if (options.MetricsUrl is not { Length: > 0 } url)
        {
            return null;
        }

        try
        {
            double heap = 0, pause = 0, gen2 = 0;
            foreach (var line in (await http.GetStringAsync(url)).Split('\n'))
            {
                var value = line.LastIndexOf(' ') is var at and > 0 && double.TryParse(line[(at + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v : double.NaN;
                if (line.StartsWith("dotnet_gc_last_collection_heap_size_bytes{", StringComparison.Ordinal))
                {
                    heap += value;
                }
                else if (line.StartsWith("dotnet_gc_pause_time_seconds_total{", StringComparison.Ordinal))
                {
                    pause = value;
                }
                else if (line.StartsWith("dotnet_gc_collections_total{", StringComparison.Ordinal) && line.Contains("\"gen2\"", StringComparison.Ordinal))
                {
                    gen2 = value;
                }
            }

            return (heap, pause, gen2);
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            Console.Error.WriteLine($"  metrics: {ex.Message}");
            return null;
        }
    }

    /// <summary>The server's CPU time when the warm-up ends (the measured window's start).</summary>
    private async Task<double?> CpuAfterWarmupAsync(ServerProcess? server, CancellationToken cancel)
    {
        await Task.Delay(options.Warmup, cancel);
        return server?.CpuSeconds();
    }

    private void Report(ServerProcess? server, (long RssKiB, long PeakKiB)? before, List<long>[] latencies, long expected, double? cpuSeconds)
    {
        var seconds = options.Duration.TotalSeconds;
        var sent = Interlocked.Read(ref _sentMeasured);
        var received = Interlocked.Read(ref _receivedMeasured);
        var all = latencies.SelectMany(l => l).ToArray();
        Array.Sort(all);
        double Ms(double fraction) => all.Length == 0 ? double.NaN : all[Math.Min(all.Length - 1, (int)(fraction * all.Length))] * 1000.0 / Stopwatch.Frequency;
        var loss = expected == 0 ? 0 : Math.Max(0, expected - received);
        var memory = server?.Memory();
        var inv = CultureInfo.InvariantCulture;

        Console.WriteLine();
        Console.WriteLine($"== {(options.Label.Length > 0 ? options.Label : $"{options.Host}:{options.Port}")}: {options.Shape} {options.Publishers}x{options.Subscribers} QoS {options.Qos} {options.PayloadBytes} B, {seconds:0}s measured");
        Console.WriteLine(string.Create(inv, $"sent      {sent,10} msgs  {sent / seconds,10:0} msg/s   (publish errors: {Interlocked.Read(ref _publishErrors)})"));
        Console.WriteLine(string.Create(inv, $"received  {received,10} msgs  {received / seconds,10:0} msg/s   expected {expected}, lost {loss} ({(expected == 0 ? 0 : 100.0 * loss / expected):0.###}%)"));
        Console.WriteLine(string.Create(inv, $"latency   p50 {Ms(0.50):0.00} ms  p95 {Ms(0.95):0.00} ms  p99 {Ms(0.99):0.00} ms  max {Ms(1.0):0.00} ms"));
        var first = Interlocked.Read(ref _firstReceived);
        var last = Interlocked.Read(ref _lastReceived);
        double? arriving = null;
        if (received > 1 && last > first)
        {
            // For bursts (--max-messages): the rate while messages were arriving, not over the whole duration.
            var span = (last - first) / (double)Stopwatch.Frequency;
            arriving = received / span;
            Console.WriteLine(string.Create(inv, $"delivery  {received} msgs in {span:0.00} s from the first to the last = {arriving:0} msg/s"));
        }

        double? cpuPerMessage = null;
        if (cpuSeconds is { } cpu && received > 0)
        {
            cpuPerMessage = cpu * 1e6 / received;
            Console.WriteLine(string.Create(inv, $"server    CPU {cpu:0.00} s while measured = {cpuPerMessage:0.0} us per delivered message"));
        }

        if (memory is { } m)
        {
            Console.WriteLine(string.Create(inv, $"server    pid {server!.Pid} ({server.Name()})  RSS before {before?.RssKiB / 1024.0:0.0} MiB, after {m.RssKiB / 1024.0:0.0} MiB, peak {m.PeakKiB / 1024.0:0.0} MiB"));
        }

        Console.WriteLine(string.Create(inv,
            $"| {options.Label} | {options.Shape} | {options.Publishers}x{options.Subscribers} | {options.Qos} | {sent / seconds:0} | {received / seconds:0} | {(expected == 0 ? 0 : 100.0 * loss / expected):0.##}% | {Ms(0.50):0.00} | {Ms(0.95):0.00} | {Ms(0.99):0.00} | {(memory is { } mm ? $"{mm.PeakKiB / 1024.0:0}" : "-")} | {(arriving is { } a ? $"{a:0}" : "-")} | {(cpuPerMessage is { } c ? $"{c:0.0}" : "-")} |"));
    }

    private static void InterlockedMax(ref long target, long value)
    {
        var current = Interlocked.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current)
            {
                return;
            }

            current = seen;
        }
    }

    private static async Task ForEachAsync(int count, Func<int, Task> action)
    {
        using var gate = new SemaphoreSlim(ConnectConcurrency);
        await Task.WhenAll(Enumerable.Range(0, count).Select(async i =>
        {
            await gate.WaitAsync();
            try
            {
                await action(i);
            }
            finally
            {
                gate.Release();
            }
        }));
    }
}
