using System.Globalization;

namespace OrleansIot.Bench;

internal enum Shape
{
    /// <summary>Each publisher to its own topic, each with its own subscriber.</summary>
    P2p,

    /// <summary>Many publishers to their own topics, subscribers on one wildcard filter.</summary>
    FanIn,

    /// <summary>Publishers to one topic, many subscribers on it.</summary>
    FanOut,
}

internal sealed record BenchOptions(
    string Host,
    int Port,
    Shape Shape,
    int Publishers,
    int Subscribers,
    int Qos,
    int PayloadBytes,
    TimeSpan Duration,
    TimeSpan Warmup,
    double RatePerPublisher,
    int InFlight,
    int MqttVersion,
    long MaxMessages,
    int? ServerPid,
    string Label,
    string SubscriberHost,
    int SubscriberPort,
    bool RawSubscribers = false,
    TimeSpan ReportEvery = default,
    string? MetricsUrl = null,
    string? MetricsKey = null)
{
    public static BenchOptions Parse(string[] args)
    {
        var values = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
        for (var i = 0; i < args.Length; i++)
        {
            if (!args[i].StartsWith("--", StringComparison.Ordinal) || i + 1 >= args.Length)
            {
                throw new ArgumentException($"expected '--name value', got '{args[i]}'");
            }

            values[args[i][2..]] = args[++i];
        }

        string Get(string name, string fallback) => values.Remove(name, out var v) ? v : fallback;
        int Int(string name, int fallback, int min, int max)
        {
            var text = Get(name, fallback.ToString(CultureInfo.InvariantCulture));
            return int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) && v >= min && v <= max
                ? v
                : throw new ArgumentException($"--{name} must be a whole number from {min} to {max}, got '{text}'");
        }

        var shape = Get("shape", "p2p").ToLowerInvariant() switch
        {
            "p2p" => Shape.P2p,
            "fan-in" or "fanin" => Shape.FanIn,
            "fan-out" or "fanout" => Shape.FanOut,
            var other => throw new ArgumentException($"--shape must be p2p, fan-in or fan-out, got '{other}'"),
        };
        var publishers = Int("publishers", shape == Shape.FanOut ? 1 : 100, 1, 100_000);
        var subscribers = Int("subscribers", shape switch { Shape.P2p => publishers, Shape.FanIn => 1, _ => 100 }, 1, 100_000);
        if (shape == Shape.P2p && subscribers != publishers)
        {
            throw new ArgumentException("--shape p2p pairs each publisher with one subscriber: --subscribers must equal --publishers");
        }

        var options = new BenchOptions(
            Get("host", "127.0.0.1"),
            Int("port", 1883, 1, 65535),
            shape,
            publishers,
            subscribers,
            Int("qos", 1, 0, 2),
            Int("payload", 64, 16, 128 * 1024),
            TimeSpan.FromSeconds(Int("duration", 10, 1, 3600)),
            TimeSpan.FromSeconds(Int("warmup", 2, 0, 600)),
            double.Parse(Get("rate", "0"), CultureInfo.InvariantCulture),
            Int("inflight", 1, 1, 1000),
            Int("mqtt", 5, 3, 5),
            long.Parse(Get("max-messages", "0"), CultureInfo.InvariantCulture),
            values.ContainsKey("server-pid") ? Int("server-pid", 0, 1, int.MaxValue) : null,
            Get("label", ""),
            "",
            0);
        options = options with
        {
            SubscriberHost = Get("sub-host", options.Host),
            SubscriberPort = Int("sub-port", options.Port, 1, 65535),
            RawSubscribers = Get("subscriber", "mqttnet").ToLowerInvariant() switch
            {
                "mqttnet" => false,
                "raw" => true,
                var other => throw new ArgumentException($"--subscriber must be mqttnet or raw, got '{other}'"),
            },
            ReportEvery = TimeSpan.FromSeconds(Int("report-every", 0, 0, 3600)),
            MetricsUrl = values.ContainsKey("metrics") ? Get("metrics", "") : null,
            MetricsKey = values.ContainsKey("metrics-key") ? Get("metrics-key", "") : null,
        };
        if (values.Count > 0)
        {
            throw new ArgumentException($"unknown option(s): {string.Join(", ", values.Keys.Select(k => "--" + k))}");
        }

        if (options.MqttVersion == 4)
        {
            throw new ArgumentException("--mqtt is 3 (3.1.1) or 5");
        }

        return options;
    }

    public const string Usage = """
        usage: OrleansIot.Bench pubsub [options]
          --host 127.0.0.1      broker host (loopback only for load tests on shared machines)
          --port 1883           broker MQTT port
          --shape p2p           p2p | fan-in | fan-out
          --publishers N        p2p/fan-in: 100, fan-out: 1
          --subscribers N       p2p: = publishers, fan-in: 1, fan-out: 100
          --qos 1               0, 1 or 2 (publish and subscription)
          --payload 64          payload bytes (>= 16: a send timestamp travels in it)
          --duration 10         seconds of measured load (after the warm-up)
          --warmup 2            seconds of load not counted
          --rate 0              messages/s per publisher; 0 = as fast as acknowledgements allow (QoS 0: as fast as possible)
          --inflight 1          QoS 1/2 publishes a publisher keeps in flight
          --mqtt 5              protocol: 3 (3.1.1) or 5
          --max-messages 0      stop each publisher after this many (0 = no limit)
          --server-pid PID      the broker's process, for RSS (default: the local process listening on --port)
          --label TEXT          name printed in the report
          --sub-host, --sub-port  where subscribers connect (default: --host/--port), e.g. another node of a cluster
          --report-every 0      seconds: print a table row per interval (rates, latency, server RSS; a soak), 0 = off
          --metrics URL         with --report-every: the server's Prometheus /metrics, for its GC heap and pauses
          --metrics-key KEY     API key for --metrics (Authorization: Bearer)
          --subscriber mqttnet  mqttnet | raw: raw is a minimal MQTT 3.1.1 subscriber acknowledging in batches, so that
                                one subscriber (fan-in) measures the broker, not the client (MQTTnet's caps near 4k QoS 1 msg/s)
        """;
}
