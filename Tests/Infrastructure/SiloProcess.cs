using System.Diagnostics;
using System.Text;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// A silo host in its own OS process (the built OrleansIot.Silo), for tests that need real process boundaries:
/// several nodes forming a cluster, kill -9, exit codes.
/// </summary>
public sealed class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private SiloProcess(Process process, int mqttPort, int httpPort)
    {
        _process = process;
        MqttPort = mqttPort;
        HttpPort = httpPort;
        Http = new HttpClient(new ExitAware(this)) { BaseAddress = new Uri($"http://127.0.0.1:{httpPort}") };
        Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", NodeFixture.AdminKey);
        process.OutputDataReceived += (_, e) => Append(e.Data);
        process.ErrorDataReceived += (_, e) => Append(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public int MqttPort { get; }
    public int HttpPort { get; }
    public HttpClient Http { get; }
    public bool HasExited => _process.HasExited;

    /// <summary>The process's resident memory now, from /proc (Linux), in KiB.</summary>
    public long ResidentKiB =>
        File.ReadLines($"/proc/{_process.Id}/status").Where(l => l.StartsWith("VmRSS:", StringComparison.Ordinal))
            .Select(l => long.Parse(l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], System.Globalization.CultureInfo.InvariantCulture))
            .First();
    public int ExitCode => _process.ExitCode;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    /// <summary>Path of the built silo (next to this test assembly's build of the Silo project).</summary>
    public static string SiloDll
    {
        get
        {
            var testBin = AppContext.BaseDirectory;                       // Tests/bin/<cfg>/net10.0/
            var configuration = new DirectoryInfo(testBin).Parent!.Name;  // <cfg>
            var root = Path.GetFullPath(Path.Combine(testBin, "..", "..", "..", ".."));
            return Path.Combine(root, "Silo", "bin", configuration, "net10.0", "OrleansIot.Silo.dll");
        }
    }

    /// <summary>Starts a silo with the given settings (as environment variables) and free ports.</summary>
    public static SiloProcess Start(IDictionary<string, string> settings, int? mqttPort = null, int? httpPort = null, int? siloPort = null, int? gatewayPort = null)
    {
        var mqtt = mqttPort ?? FreePorts.Next();
        var http = httpPort ?? FreePorts.Next();
        var start = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(SiloDll);
        start.Environment["Iot__Mqtt__Port"] = mqtt.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Iot__Http__Port"] = http.ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Iot__BindAddress"] = "127.0.0.1";
        start.Environment["Orleans__Endpoints__SiloPort"] = (siloPort ?? FreePorts.Next()).ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["Orleans__Endpoints__GatewayPort"] = (gatewayPort ?? FreePorts.Next()).ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment["DOTNET_gcServer"] = "0";
        // Many processes share the machine: no TLS listeners on fixed ports; devices connect anonymously (the
        // PostgreSQL mode's default is off), unless a test says otherwise.
        start.Environment["Iot__Tls__Enabled"] = "false";
        start.Environment["Iot__Auth__AllowAnonymous"] = "true";
        start.Environment["Iot__Auth__BootstrapAdminKey"] = NodeFixture.AdminKey;
        foreach (var (key, value) in settings)
        {
            start.Environment[key] = value;
        }

        return new SiloProcess(Process.Start(start)!, mqtt, http);
    }

    /// <summary>An MQTT client connected to this node (MQTT 3.1.1 unless told), the CONNACK checked.</summary>
    public async Task<MQTTnet.IMqttClient> ConnectAsync(string clientId, MQTTnet.Formatter.MqttProtocolVersion version = MQTTnet.Formatter.MqttProtocolVersion.V311)
    {
        var client = new MQTTnet.MqttClientFactory().CreateMqttClient();
        var result = await client.ConnectAsync(new MQTTnet.MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", MqttPort).WithClientId(clientId).WithProtocolVersion(version).WithTimeout(TimeSpan.FromSeconds(10)).Build());
        Assert.Equal(MQTTnet.MqttClientConnectResultCode.Success, result.ResultCode);
        return client;
    }

    /// <summary>Waits until the node answers /health (or fails with its output if it exits first).</summary>
    public async Task WaitUntilReadyAsync(TimeSpan? timeout = null)
    {
        try
        {
            await Eventually.True(async () => _process.HasExited || (await Http.GetAsync("/health")).IsSuccessStatusCode, "the silo to answer /health", timeout ?? TimeSpan.FromSeconds(60));
        }
        catch (TimeoutException)
        {
            throw new TimeoutException($"Silo did not become ready:\n{Output}");
        }

        if (_process.HasExited)
        {
            throw new InvalidOperationException($"Silo exited with {_process.ExitCode}:\n{Output}");
        }
    }

    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        using var cts = new CancellationTokenSource(timeout);
        await _process.WaitForExitAsync(cts.Token);
        return _process.ExitCode;
    }

    /// <summary>SIGTERM, as systemd, docker stop and Kubernetes stop a node: its graceful shutdown runs.</summary>
    public void Terminate()
    {
        using var kill = Process.Start(new ProcessStartInfo("kill", ["-TERM", _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!;
        kill.WaitForExit();
    }

    /// <summary>kill -9: no shutdown code runs.</summary>
    public void Kill() => _process.Kill(entireProcessTree: true);

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }

        _process.Dispose();
        Http.Dispose();
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }

        lock (_output)
        {
            _output.AppendLine(line);
        }
    }

    /// <summary>
    /// Turns a refused connection into what happened to the node: whether it exited, with what, and what it said
    /// (a bare "connection refused" once hid why a restarted node went away).
    /// </summary>
    private sealed class ExitAware(SiloProcess silo) : DelegatingHandler(new SocketsHttpHandler())
    {
        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            try
            {
                return await base.SendAsync(request, cancellationToken);
            }
            catch (HttpRequestException ex) when (ex.InnerException is System.Net.Sockets.SocketException)
            {
                var state = silo.HasExited ? $"it exited with {silo.ExitCode}" : "it is still running";
                throw new HttpRequestException($"{ex.Message}: the silo on port {silo.HttpPort} refused; {state}. Its output:\n{silo.Output}", ex);
            }
        }
    }
}
