using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text.Json.Nodes;

namespace OrleansIot.Bench;

/// <summary>
/// <c>download</c>: devices downloading firmware. Uploads a random artifact to a node and downloads it through a
/// signed URL with <c>--parallel</c> concurrent whole-file downloads for <c>--duration</c> seconds; or, with
/// <c>--url</c>, downloads that URL the same way (the same file from a static file server, for comparison).
/// </summary>
internal static class DownloadRun
{
    public const string Usage = """
        download [--http 8080 --key API_KEY | --url URL] [--host 127.0.0.1] [--size-mb 64] [--parallel 4] [--duration 10]
                 [--save PATH] [--pid PID] [--label L]
          with --http: uploads a random --size-mb artifact (also written to --save, for a static server to serve) and
          downloads it through a signed URL; with --url: downloads that URL. Prints MB/s, downloads and the server's CPU
          per GB (the process listening on the URL's port, or --pid)
        """;

    public static async Task<int> RunAsync(string[] args, CancellationToken stop)
    {
        var a = new BenchArgs(args);
        var inv = CultureInfo.InvariantCulture;
        var host = a.Get("host", "127.0.0.1");
        var parallel = a.Int("parallel", 4);
        var duration = TimeSpan.FromSeconds(a.Int("duration", 10));
        string url;
        if (a.Has("url"))
        {
            url = a.Get("url", "");
        }
        else if (a.Has("http") && a.Has("key"))
        {
            using var api = new HttpClient { BaseAddress = new Uri($"http://{host}:{a.Int("http", 8080)}"), Timeout = TimeSpan.FromMinutes(5) };
            api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", a.Get("key", ""));
            var bytes = RandomNumberGenerator.GetBytes(a.Int("size-mb", 64) * 1024 * 1024);
            if (a.Has("save"))
            {
                await File.WriteAllBytesAsync(a.Get("save", ""), bytes, stop);
            }

            var upload = Stopwatch.StartNew();
            var content = new ByteArrayContent(bytes);
            content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/octet-stream");
            var created = await (await api.PostAsync("/api/artifacts?name=bench.bin", content, stop)).EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonObject>(stop);
            await Console.Error.WriteLineAsync($"uploaded {bytes.Length / 1048576} MiB in {upload.Elapsed.TotalSeconds:0.00}s ({bytes.Length / 1048576.0 / upload.Elapsed.TotalSeconds:0} MiB/s)");
            var signed = await (await api.PostAsync($"/api/artifacts/{created!["artifactId"]}/url?expiresInSec=3600", null, stop)).EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonObject>(stop);
            url = (string)signed!["url"]!;
        }
        else
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var uri = new Uri(url);
        var server = ServerProcess.Find(a.Has("pid") ? a.Int("pid", 0) : null, uri.Host, uri.Port);
        var label = a.Get("label", $"{uri.Host}:{uri.Port}");
        using var http = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = parallel }) { Timeout = TimeSpan.FromMinutes(5) };
        var cpu0 = server?.CpuSeconds();
        long bytesRead = 0, downloads = 0;
        using var end = CancellationTokenSource.CreateLinkedTokenSource(stop);
        end.CancelAfter(duration);
        var clock = Stopwatch.StartNew();
        var buffer = new byte[parallel][];
        await Task.WhenAll(Enumerable.Range(0, parallel).Select(async worker =>
        {
            var chunk = buffer[worker] = new byte[81920];
            while (!end.IsCancellationRequested)
            {
                try
                {
                    using var response = await http.GetAsync(url, HttpCompletionOption.ResponseHeadersRead, end.Token);
                    response.EnsureSuccessStatusCode();
                    await using var body = await response.Content.ReadAsStreamAsync(end.Token);
                    int read;
                    while ((read = await body.ReadAsync(chunk, end.Token)) > 0)
                    {
                        Interlocked.Add(ref bytesRead, read);
                    }

                    Interlocked.Increment(ref downloads);
                }
                catch (OperationCanceledException) when (end.IsCancellationRequested)
                {
                }
            }
        }));
        var seconds = clock.Elapsed.TotalSeconds;
        var cpu = server?.CpuSeconds() - cpu0;
        var gb = bytesRead / 1e9;
        var cpuText = cpu is { } c ? string.Create(inv, $", server CPU {c:0.00}s = {c / gb:0.00} s/GB ({server!.Name()})") : "";
        Console.WriteLine(string.Create(inv, $"download  {label}  parallel={parallel}  {bytesRead / 1048576.0 / seconds:0} MiB/s over {seconds:0.0}s, {downloads} whole downloads{cpuText}"));
        return 0;
    }
}
