using System.Net.Http.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MQTTnet;
using MQTTnet.Formatter;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Silo.Hosting;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// The real silo host (silo + gateway, embedded default) running in the test process on free loopback ports, for
/// end-to-end tests with real MQTT clients and HTTP.
/// </summary>
public class NodeFixture : IAsyncLifetime
{
    /// <summary>The admin API key every test node accepts (<c>Iot:Auth:BootstrapAdminKey</c>); <see cref="Http"/> sends it.</summary>
    public const string AdminKey = "test-admin-key-0123456789";

    private readonly List<IMqttClient> _clients = [];

    public int MqttPort { get; } = FreePorts.Next();
    public int HttpPort { get; } = FreePorts.Next();

    /// <summary>MQTT over TLS (mTLS) and HTTPS, open when <see cref="Tls"/>.</summary>
    public int TlsPort { get; } = FreePorts.Next();
    public int HttpsPort { get; } = FreePorts.Next();
    public LogCollector Logs { get; } = new();

    /// <summary>Where this node keeps artifacts' bytes (removed with the fixture).</summary>
    public string ArtifactDirectory { get; } = Path.Combine(Path.GetTempPath(), $"oiot-artifacts-{Guid.NewGuid():N}");
    public WebApplication App { get; private set; } = null!;
    public HttpClient Http { get; private set; } = null!;
    public IClusterClient Cluster => App.Services.GetRequiredService<IClusterClient>();

    /// <summary>The configured admin key (<see cref="AdminKey"/>); null: the node makes one at first start and logs it.</summary>
    protected virtual string? ConfiguredAdminKey => AdminKey;

    /// <summary>Whether the TLS listeners open (off by default: most tests need only the plain ones).</summary>
    protected virtual bool Tls => false;

    /// <summary>Extra settings as command-line style key=value pairs.</summary>
    protected virtual IEnumerable<string> Settings => [];

    /// <summary>Further composition of the host before it is built (a test's fault injection, for one).</summary>
    protected virtual void Configure(WebApplicationBuilder builder)
    {
    }

    public async Task InitializeAsync()
    {
        string[] args =
        [
            $"--Iot:Mqtt:Port={MqttPort}",
            $"--Iot:Http:Port={HttpPort}",
            "--Iot:BindAddress=127.0.0.1",
            .. ConfiguredAdminKey is { } key ? [$"--Iot:Auth:BootstrapAdminKey={key}"] : Array.Empty<string>(),
            $"--Iot:Tls:Enabled={Tls}",
            $"--Iot:Mqtt:TlsPort={TlsPort}",
            $"--Iot:Https:Port={HttpsPort}",
            "--Iot:Usage:FlushInterval=00:00:00.100",
            "--Iot:Things:UsagePersistInterval=00:00:00.200",
            "--Iot:Rules:RefreshInterval=00:00:00",
            "--Iot:Rules:UsageFlushInterval=00:00:00.200",
            "--Iot:Alarms:MinimumPeriod=00:00:01",
            $"--Orleans:Endpoints:SiloPort={FreePorts.Next()}",
            $"--Orleans:Endpoints:GatewayPort={FreePorts.Next()}",
            $"--Orleans:ClusterId=node-{Guid.NewGuid():N}",
            $"--Iot:Artifacts:Directory={ArtifactDirectory}",
            "--Logging:LogLevel:Default=Warning",
            .. Settings.Select(s => "--" + s),
        ];
        App = IotSiloHost.CreateApplication(args, builder =>
        {
            builder.Logging.AddProvider(Logs);
            Configure(builder);
        });
        await App.StartAsync();
        Http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{HttpPort}") };
        Http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", AdminKey);
        await Eventually.True(async () => (await Http.GetAsync("/health")).IsSuccessStatusCode, "the node to accept MQTT");
    }

    public async Task DisposeAsync()
    {
        foreach (var client in _clients)
        {
            client.Dispose();
        }

        Http.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
        if (Directory.Exists(ArtifactDirectory))
        {
            Directory.Delete(ArtifactDirectory, recursive: true);
        }
    }

    public MqttClientOptionsBuilder Options(string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500) =>
        new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", MqttPort)
            .WithClientId(clientId)
            .WithProtocolVersion(version)
            .WithTimeout(TimeSpan.FromSeconds(10));

    /// <summary>A connected MQTT client, disposed with the fixture.</summary>
    public async Task<IMqttClient> ConnectAsync(string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var client = NewClient();
        var result = await client.ConnectAsync(Options(clientId, version).Build());
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        return client;
    }

    public IMqttClient NewClient()
    {
        var client = new MqttClientFactory().CreateMqttClient();
        lock (_clients)
        {
            _clients.Add(client);
        }

        return client;
    }

    public async Task<ThingStatus?> GetThingAsync(string thingName)
    {
        var response = await Http.GetAsync($"/api/things/{Uri.EscapeDataString(thingName)}/status");
        if (response.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<ThingStatus>(Json.Web);
    }

    /// <summary>
    /// Fails if the node logged an error since <paramref name="since"/> (the tests of one node fixture run one at a
    /// time, so the window holds only the calling test's work).
    /// </summary>
    public void AssertNoErrorsLogged(DateTime since)
    {
        var unexpected = Logs.Errors.Where(e => e.At >= since).ToList();
        Assert.True(unexpected.Count == 0, "The node logged errors:\n" + string.Join("\n", unexpected));
    }
}

public static class Json
{
    public static readonly System.Text.Json.JsonSerializerOptions Web = new(System.Text.Json.JsonSerializerDefaults.Web);
}

[CollectionDefinition(Name)]
public sealed class NodeCollection : ICollectionFixture<NodeFixture>
{
    public const string Name = "node";
}
