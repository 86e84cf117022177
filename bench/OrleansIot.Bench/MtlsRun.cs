using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;

namespace OrleansIot.Bench;

/// <summary>
/// <c>mtls</c>: connects per second over MQTT with mTLS, each a full TLS handshake with a device certificate and the
/// CONNECT checked against the registry and the policies, then a DISCONNECT.
/// </summary>
internal static class MtlsRun
{
    public const string Usage = """
        mtls --port TLS_PORT --http H --key API_KEY [--host 127.0.0.1] [--alg ecdsa|rsa] [--devices 200]
             [--concurrency 32] [--duration 10] [--warmup 3] [--plain PORT] [--label L]
          makes --devices certificates from CSRs (ECDSA P-256 or RSA 2048 keys made here) with a connect-only policy,
          then --concurrency loops each connect (TLS + MQTT 5 CONNECT), wait for CONNACK, disconnect, with the
          devices in turn; prints connects/s, CONNACK latency p50/p99 and refusals. --plain PORT: the same loop without
          TLS on the plain listener (development access), for the cost of TLS by difference
        """;

    private const string Policy = """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}""";

    public static async Task<int> RunAsync(string[] args, CancellationToken stop)
    {
        var a = new BenchArgs(args);
        if (!a.Has("port") || !a.Has("http") || !a.Has("key"))
        {
            Console.Error.WriteLine(Usage);
            return 2;
        }

        var inv = CultureInfo.InvariantCulture;
        var host = a.Get("host", "127.0.0.1");
        var port = a.Int("port", 8883);
        var alg = a.Get("alg", "ecdsa");
        var deviceCount = a.Int("devices", 200);
        var concurrency = a.Int("concurrency", 32);
        var duration = TimeSpan.FromSeconds(a.Int("duration", 10));
        var warmup = TimeSpan.FromSeconds(a.Int("warmup", 3));
        var plain = a.Has("plain");
        var label = a.Get("label", plain ? $"plain {host}:{a.Int("plain", 1883)}" : $"{alg} {host}:{port}");

        using var http = new HttpClient { BaseAddress = new Uri($"http://{host}:{a.Int("http", 8080)}") };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", a.Get("key", ""));
        var run = Guid.NewGuid().ToString("N")[..6];
        var policy = $"bench-mtls-{run}";
        (await http.PostAsync($"/api/policies/{policy}", Json(new JsonObject { ["policyDocument"] = Policy }), stop)).EnsureSuccessStatusCode();
        var caPem = (string)(await http.GetFromJsonAsync<JsonObject>("/api/cacertificate", stop))!["certificatePem"]!;
        using var ca = X509Certificate2.CreateFromPem(caPem);
        var trust = new X509Certificate2Collection(ca);   // the server must chain to the platform CA alone

        Console.WriteLine($"making {deviceCount} {alg} device certificates ...");
        var devices = new List<X509Certificate2>(deviceCount);
        for (var i = 0; i < deviceCount; i++)
        {
            devices.Add(await NewDeviceAsync(http, alg, policy, stop));
        }

        var latencies = new ConcurrentBag<double>();
        long connected = 0, refused = 0, failed = 0, next = 0;
        var clock = Stopwatch.StartNew();
        var measuring = false;
        var factory = new MqttClientFactory();
        async Task LoopAsync()
        {
            while (!stop.IsCancellationRequested && clock.Elapsed < warmup + duration)
            {
                var device = devices[(int)(Interlocked.Increment(ref next) % devices.Count)];
                var builder = new MqttClientOptionsBuilder()
                    .WithClientId($"mtls-{run}-{Interlocked.Read(ref next)}")
                    .WithTimeout(TimeSpan.FromSeconds(10));
                var options = plain
                    ? builder.WithTcpServer(host, a.Int("plain", 1883)).Build()
                    : builder.WithTcpServer(host, port)
                        .WithTlsOptions(o => o.UseTls().WithTargetHost("localhost").WithClientCertificates([device]).WithTrustChain(trust))
                        .Build();
                using var client = factory.CreateMqttClient();
                var started = Stopwatch.GetTimestamp();
                try
                {
                    var result = await client.ConnectAsync(options, stop);
                    var ms = Stopwatch.GetElapsedTime(started).TotalMilliseconds;
                    if (Volatile.Read(ref measuring))
                    {
                        if (result.ResultCode == MqttClientConnectResultCode.Success)
                        {
                            Interlocked.Increment(ref connected);
                            latencies.Add(ms);
                        }
                        else
                        {
                            Interlocked.Increment(ref refused);
                        }
                    }

                    await client.DisconnectAsync(cancellationToken: stop);
                }
                catch (Exception) when (!stop.IsCancellationRequested)
                {
                    if (Volatile.Read(ref measuring))
                    {
                        Interlocked.Increment(ref failed);
                    }
                }
            }
        }

        var loops = Enumerable.Range(0, concurrency).Select(_ => Task.Run(LoopAsync, stop)).ToList();
        await Task.Delay(warmup, stop);
        Volatile.Write(ref measuring, true);
        var window = Stopwatch.StartNew();
        await Task.WhenAll(loops);
        var seconds = window.Elapsed.TotalSeconds;
        var sorted = latencies.Order().ToList();
        Console.WriteLine(string.Create(inv, $"== mtls {label}: {connected / seconds:0} connects/s over {seconds:0.0} s ({concurrency} concurrent, {deviceCount} certificates), CONNACK p50 {BenchArgs.Quantile(sorted, 0.5):0.0} ms p99 {BenchArgs.Quantile(sorted, 0.99):0.0} ms, refused {refused}, failed {failed}"));
        foreach (var device in devices)
        {
            device.Dispose();
        }

        return refused + failed == 0 ? 0 : 1;
    }

    /// <summary>A device key made here, a certificate for it from a CSR (CreateCertificateFromCsr, ACTIVE), the policy attached.</summary>
    private static async Task<X509Certificate2> NewDeviceAsync(HttpClient http, string alg, string policy, CancellationToken stop)
    {
        using AsymmetricAlgorithm key = alg == "rsa" ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = key is RSA rsa
            ? new CertificateRequest("CN=bench", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1)
            : new CertificateRequest("CN=bench", (ECDsa)key, HashAlgorithmName.SHA256);
        var csr = request.CreateSigningRequestPem();
        var created = await (await http.PostAsync("/api/certificates?setAsActive=true", Json(new JsonObject { ["certificateSigningRequest"] = csr }), stop)).EnsureSuccessStatusCode().Content.ReadFromJsonAsync<JsonObject>(stop);
        (await http.PutAsync($"/api/target-policies/{policy}", Json(new JsonObject { ["target"] = (string)created!["certificateArn"]! }), stop)).EnsureSuccessStatusCode();
        var pem = (string)created["certificatePem"]!;
        using var withKey = key is RSA r ? X509Certificate2.CreateFromPem(pem).CopyWithPrivateKey(r) : X509Certificate2.CreateFromPem(pem).CopyWithPrivateKey((ECDsa)key);
        return X509CertificateLoader.LoadPkcs12(withKey.Export(X509ContentType.Pkcs12), null);
    }

    private static StringContent Json(JsonNode node) => new(node.ToJsonString(), Encoding.UTF8, "application/json");
}
