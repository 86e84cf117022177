using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;

namespace OrleansIot.Bench;

/// <summary>
/// <c>jobs</c>: N things in one group, each connected and listening to its <c>notify-next</c> as AWS's jobs sample
/// does; one job over the group (at <c>--rate</c> executions per minute, or as fast as the node goes). Measures when
/// each device heard of the job: the fan-out time, the rate per minute the rollout held (overall and the busiest 60 s
/// window), the node's CPU per execution; with <c>--respond</c> each device also reports SUCCEEDED and the run lasts
/// until the job is COMPLETED.
/// </summary>
internal static class JobsRun
{
    public const string Usage = """
        jobs --port P --http H --key API_KEY [--host 127.0.0.1] [--things 10000] [--rate 0] [--respond false]
             [--concurrency 64] [--idle 30] [--pid PID] [--label L]
          makes --things things in a new group, connects each (MQTT 3.1.1) subscribed to its notify-next, creates a
          job over the group (--rate: maximumPerMinute, 0 = no limit), and prints the time to notify every device, the
          rate the rollout held and the node's CPU per execution, also above the fleet's idle cost measured for --idle
          seconds before the job (the node found by its MQTT port, or --pid)
        """;

    public static async Task<int> RunAsync(string[] args, CancellationToken stop)
    {
        var a = new BenchArgs(args);
        var inv = CultureInfo.InvariantCulture;
        var host = a.Get("host", "127.0.0.1");
        var port = a.Int("port", 1883);
        var count = a.Int("things", 10_000);
        var rate = a.Int("rate", 0);
        var respond = a.Get("respond", "false") == "true";
        var concurrency = a.Int("concurrency", 64);
        var label = a.Get("label", $"{host}:{port}");
        if (!a.Has("http") || !a.Has("key"))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var run = Guid.NewGuid().ToString("N")[..6];
        var group = $"bench-{run}";
        var jobId = $"bench-job-{run}";
        using var http = new HttpClient { BaseAddress = new Uri($"http://{host}:{a.Int("http", 8080)}"), Timeout = TimeSpan.FromMinutes(2) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", a.Get("key", ""));
        var server = ServerProcess.Find(a.Has("pid") ? a.Int("pid", 0) : null, host, port);

        await Check(await http.PostAsync($"/api/thing-groups/{group}", Json("{}"), stop));
        var setup = Stopwatch.StartNew();
        var names = Enumerable.Range(0, count).Select(i => $"{group}-{i}").ToArray();
        await Parallel.ForEachAsync(names, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = stop }, async (name, token) =>
        {
            await Check(await http.PostAsync($"/api/things/{name}", Json("{}"), token));
            await Check(await http.PutAsync("/api/thing-groups/addThingToThingGroup", Json($$"""{"thingGroupName":"{{group}}","thingName":"{{name}}"}"""), token));
        });
        await Console.Error.WriteLineAsync($"{count} things in group {group} in {setup.Elapsed.TotalSeconds:0.0}s; connecting them");

        var clock = Stopwatch.StartNew();
        var heard = new ConcurrentDictionary<string, double>();
        long succeeded = 0;
        var factory = new MqttClientFactory();
        var clients = new IMqttClient[count];
        await Parallel.ForAsync(0, count, new ParallelOptions { MaxDegreeOfParallelism = concurrency, CancellationToken = stop }, async (i, token) =>
        {
            var name = names[i];
            var client = factory.CreateMqttClient();
            client.ApplicationMessageReceivedAsync += async e =>
            {
                var topic = e.ApplicationMessage.Topic;
                if (topic.EndsWith("/notify-next", StringComparison.Ordinal)
                    && JsonNode.Parse(e.ApplicationMessage.ConvertPayloadToString())?["execution"]?["jobId"]?.GetValue<string>() == jobId
                    && heard.TryAdd(name, clock.Elapsed.TotalSeconds) && respond)
                {
                    await client.PublishStringAsync($"$aws/things/{name}/jobs/{jobId}/update", """{"status":"SUCCEEDED"}""", MqttQualityOfServiceLevel.AtLeastOnce);
                    Interlocked.Increment(ref succeeded);
                }
            };
            await client.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer(host, port).WithClientId(name)
                .WithProtocolVersion(MqttProtocolVersion.V311).WithTimeout(TimeSpan.FromSeconds(60)).WithKeepAlivePeriod(TimeSpan.FromMinutes(5)).Build(), token);
            await client.SubscribeAsync($"$aws/things/{name}/jobs/notify-next", MqttQualityOfServiceLevel.AtLeastOnce, token);
            clients[i] = client;
        });
        await Console.Error.WriteLineAsync($"{count} devices connected; creating job {jobId}" + (rate > 0 ? $" at {rate}/min" : " (no rate limit)"));

        // The fleet's own cost while nothing happens (keep-alives, usage counters): measured first, subtracted below.
        var idleWindow = TimeSpan.FromSeconds(a.Int("idle", 30));
        var idle0 = server?.CpuSeconds();
        await Task.Delay(idleWindow, stop);
        var idlePerSecond = (server?.CpuSeconds() - idle0) / idleWindow.TotalSeconds;
        var cpu0 = server?.CpuSeconds();
        var job = new JsonObject
        {
            ["targets"] = new JsonArray($"arn:aws:iot:local:000000000000:thinggroup/{group}"),
            ["document"] = """{"operation":"bench"}""",
        };
        if (rate > 0)
        {
            job["jobExecutionsRolloutConfig"] = new JsonObject { ["maximumPerMinute"] = rate };
        }

        var created = clock.Elapsed.TotalSeconds;
        await Check(await http.PutAsync($"/api/jobs/{jobId}", Json(job.ToJsonString()), stop));
        var limit = TimeSpan.FromSeconds(120 + (rate > 0 ? count * 60.0 / rate * 1.2 : 0));
        var deadline = Stopwatch.StartNew();
        while (heard.Count < count && deadline.Elapsed < limit && !stop.IsCancellationRequested)
        {
            await Task.Delay(200, CancellationToken.None);
        }

        var lastHeard = clock.Elapsed.TotalSeconds;
        double completed = double.NaN;
        if (respond)
        {
            while (deadline.Elapsed < limit && !stop.IsCancellationRequested)
            {
                var described = await http.GetFromJsonAsync<JsonObject>($"/api/jobs/{jobId}", stop);
                if ((string?)described?["job"]?["status"] == "COMPLETED")
                {
                    completed = clock.Elapsed.TotalSeconds - created;
                    break;
                }

                await Task.Delay(200, CancellationToken.None);
            }
        }

        var cpu = server?.CpuSeconds() - cpu0;
        var times = heard.Values.Order().ToList();
        var report = new StringBuilder();
        report.AppendLine(inv, $"jobs  {label}  things={count}  rate={(rate > 0 ? rate.ToString(inv) + "/min" : "unlimited")}  respond={respond}");
        report.AppendLine(inv, $"  notified {times.Count}/{count} devices; first after {(times.Count > 0 ? times[0] - created : double.NaN):0.000}s, all after {(times.Count > 0 ? times[^1] - created : double.NaN):0.000}s");
        if (times.Count > 1)
        {
            var overall = (times.Count - 1) / (times[^1] - times[0]) * 60;
            var busiest = 0;
            for (int i = 0, j = 0; i < times.Count; i++)
            {
                while (times[i] - times[j] >= 60)
                {
                    j++;
                }

                busiest = Math.Max(busiest, i - j + 1);
            }

            var versus = rate > 0 ? string.Create(inv, $" ({(overall / rate - 1) * 100:+0.0;-0.0;+0.0} % vs maximumPerMinute)") : "";
            report.AppendLine(inv, $"  rate held: {overall:0.0}/min overall (first to last notification), busiest 60 s window {busiest}{versus}");
        }

        if (respond)
        {
            report.AppendLine(inv, $"  devices reported SUCCEEDED: {Interlocked.Read(ref succeeded)}; job COMPLETED after {completed:0.000}s");
        }

        if (cpu is { } seconds && idlePerSecond is { } idleRate)
        {
            var wall = clock.Elapsed.TotalSeconds - created;
            var net = seconds - (idleRate * wall);
            report.AppendLine(inv, $"  node CPU during the job: {seconds:0.00}s in {wall:0.0}s = {seconds * 1000 / Math.Max(1, times.Count):0.000} ms per execution ({server!.Name()} pid {server.Pid})");
            report.AppendLine(inv, $"  the connected fleet at idle: {idleRate * 100:0.0} % of a core; above idle: {net:0.00}s = {net * 1000 / Math.Max(1, times.Count):0.000} ms per execution");
        }

        if (server?.Memory() is { } memory)
        {
            report.AppendLine(inv, $"  node RSS {memory.RssKiB / 1024} MiB (peak {memory.PeakKiB / 1024} MiB)");
        }

        Console.Write(report.ToString());
        await http.DeleteAsync($"/api/jobs/{jobId}?force=true", CancellationToken.None);
        foreach (var client in clients.Where(c => c is not null))
        {
            client.Dispose();
        }

        return times.Count == count && (!respond || !double.IsNaN(completed)) ? 0 : 1;
    }

    private static StringContent Json(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task Check(HttpResponseMessage response)
    {
        if (!response.IsSuccessStatusCode)
        {
            throw new InvalidOperationException($"{(int)response.StatusCode} {response.RequestMessage?.RequestUri}: {await response.Content.ReadAsStringAsync()}");
        }
    }
}
