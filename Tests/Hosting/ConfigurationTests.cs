using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansIot.Silo.Hosting;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Hosting;

public sealed class ConfigurationTests
{
    [Theory]
    [InlineData("--Iot:Mqtt:Port=abc", "Iot:Mqtt:Port")]
    [InlineData("--Iot:Mqtt:Port=70000", "Iot:Mqtt:Port")]
    [InlineData("--Iot:Http:Port=0", "Iot:Http:Port")]
    [InlineData("--Iot:Storage=Oracle", "Iot:Storage")]
    [InlineData("--Iot:BindAddress=not-an-address", "Iot:BindAddress")]
    [InlineData("--Iot:Mqtt:WebSocketPath=mqtt", "Iot:Mqtt:WebSocketPath")]
    [InlineData("--Orleans:Endpoints:SiloPort=-1", "Orleans:Endpoints:SiloPort")]
    [InlineData("--Orleans:Endpoints:AdvertisedIPAddress=somewhere", "Orleans:Endpoints:AdvertisedIPAddress")]
    public void BadSetting_StopsTheSiloWithTheKeyName(string setting, string key)
    {
        var error = Assert.Throws<OptionsValidationException>(() => IotSiloHost.CreateApplication([setting]));
        Assert.Contains(key, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ABootstrapAdminKeyShorterThan16Characters_StopsTheNodeAtStart()
    {
        var error = await Assert.ThrowsAsync<OptionsValidationException>(async () =>
        {
            await using var app = IotSiloHost.CreateApplication(["--Iot:Auth:BootstrapAdminKey=short", $"--Iot:Http:Port={Infrastructure.FreePorts.Next()}", $"--Iot:Mqtt:Port={Infrastructure.FreePorts.Next()}", "--Iot:Tls:Enabled=false"]);
            await app.StartAsync();
        });
        Assert.Contains("BootstrapAdminKey", error.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// <c>Iot:Things:IdleActivationAge</c> reaches Orleans' idle collection for the thing grain, under the key Orleans
    /// reads (the grain class's full name; an idle run showed 3,000 thing activations collected after 2 minutes
    /// while the sessions stayed, docs/benchmarks.md). Its lower bound is Orleans' collection quantum, doubled.
    /// </summary>
    [Theory]
    [InlineData(null, 300)]
    [InlineData("00:02:00", 120)]
    public void TheThingsIdleActivationAge_IsOrleansCollectionAgeForTheThingGrain(string? setting, int seconds)
    {
        using var app = IotSiloHost.CreateApplication(setting is null ? [] : [$"--Iot:Things:IdleActivationAge={setting}"]);
        var collection = app.Services.GetRequiredService<IOptions<Orleans.Configuration.GrainCollectionOptions>>().Value;
        Assert.Equal(TimeSpan.FromSeconds(seconds), collection.ClassSpecificCollectionAge[typeof(Grains.Things.ThingGrain).FullName!]);
    }

    [Fact]
    public void AnIdleActivationAgeUnderTwoMinutes_StopsTheSiloWithTheKeyName()
    {
        using var app = IotSiloHost.CreateApplication(["--Iot:Things:IdleActivationAge=00:00:30"]);
        var error = Assert.Throws<OptionsValidationException>(() => app.Services.GetRequiredService<IOptions<Orleans.Configuration.GrainCollectionOptions>>().Value);
        Assert.Contains("IdleActivationAge", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PostgresWithoutConnectionString_NamesTheMissingKey()
    {
        var error = Assert.Throws<OptionsValidationException>(() => IotSiloHost.CreateApplication(["--Iot:Storage=Postgres"]));
        Assert.Contains("ConnectionStrings:Iot", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadSettingAfterBuild_StopsTheStartWithTheKeyName()
    {
        // Options validated at start (not needed to build the host) fail StartAsync the same way.
        await using var app = IotSiloHost.CreateApplication(
        [
            $"--Iot:Mqtt:Port={FreePorts.Next()}", $"--Iot:Http:Port={FreePorts.Next()}",
            $"--Orleans:Endpoints:SiloPort={FreePorts.Next()}", $"--Orleans:Endpoints:GatewayPort={FreePorts.Next()}",
            "--Iot:Usage:FlushInterval=00:00:00", "--Logging:LogLevel:Default=None",
        ]);
        var error = await Assert.ThrowsAsync<OptionsValidationException>(() => app.StartAsync());
        Assert.Contains("FlushInterval", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SiloProcess_WithBadSetting_ExitsWithCode2AndNamesTheKey()
    {
        await using var silo = SiloProcess.Start(new Dictionary<string, string> { ["Iot__Mqtt__Port"] = "not-a-port" });
        var exitCode = await silo.WaitForExitAsync(TimeSpan.FromSeconds(60));
        Assert.Equal(2, exitCode);
        Assert.Contains("Iot:Mqtt:Port", silo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task APortInUse_ExitsWithCode2_NamingTheSetting_NotACrash()
    {
        var taken = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            var port = ((System.Net.IPEndPoint)taken.LocalEndpoint).Port;
            await using var silo = SiloProcess.Start(new Dictionary<string, string>(), mqttPort: port);

            Assert.Equal(2, await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)));
            Assert.Contains($"Iot:Mqtt:Port: 127.0.0.1:{port} is already in use", silo.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("Unhandled exception", silo.Output, StringComparison.Ordinal);
        }
        finally
        {
            taken.Stop();
        }
    }

    [Fact]
    public async Task ASecondNode_OnTheFirstsOrleansPorts_IsRefused_TheyWouldShareThemOtherwise()
    {
        // Orleans' listeners let another process listen on the same port; two nodes would split one port's traffic.
        var (siloPort, gatewayPort) = (FreePorts.Next(), FreePorts.Next());
        await using var first = SiloProcess.Start(new Dictionary<string, string>(), siloPort: siloPort, gatewayPort: gatewayPort);
        await first.WaitUntilReadyAsync();

        await using var second = SiloProcess.Start(new Dictionary<string, string>(), siloPort: siloPort, gatewayPort: gatewayPort);

        Assert.Equal(2, await second.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"Orleans:Endpoints:SiloPort: 127.0.0.1:{siloPort} is already in use", second.Output, StringComparison.Ordinal);
        Assert.False(first.HasExited);
    }

    [Fact]
    public async Task AnUnreachableDatabase_ExitsWithCode2_NamingTheConnectionString()
    {
        var nobody = FreePorts.Next();
        await using var silo = SiloProcess.Start(new Dictionary<string, string>
        {
            ["Iot__Storage"] = "Postgres",
            ["ConnectionStrings__Iot"] = $"Host=127.0.0.1;Port={nobody};Database=iot;Username=iot",
        });

        Assert.Equal(2, await silo.WaitForExitAsync(TimeSpan.FromSeconds(60)));
        Assert.Contains($"ConnectionStrings:Iot: cannot connect to PostgreSQL at 127.0.0.1:{nobody}", silo.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("Unhandled exception", silo.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task PortOffset_MovesEveryPort_OfTheNode()
    {
        await using var app = IotSiloHost.CreateApplication(["--Iot:PortOffset=7", "--Iot:Tls:MultiplexPort=9443", "--Logging:LogLevel:Default=None"]);
        var services = app.Services;

        Assert.Equal(1883 + 7, services.GetRequiredService<IOptions<OrleansIot.Gateway.Hosting.MqttOptions>>().Value.Port);
        Assert.Equal(8883 + 7, services.GetRequiredService<IOptions<OrleansIot.Gateway.Hosting.MqttOptions>>().Value.TlsPort);
        Assert.Equal(8080 + 7, services.GetRequiredService<IOptions<OrleansIot.Gateway.Hosting.HttpOptions>>().Value.Port);
        Assert.Equal(8443 + 7, services.GetRequiredService<IOptions<OrleansIot.Gateway.Hosting.HttpsOptions>>().Value.Port);
        Assert.Equal(9443 + 7, services.GetRequiredService<IOptions<OrleansIot.Gateway.Hosting.TlsOptions>>().Value.MultiplexPort);
        var endpoints = services.GetRequiredService<IOptions<Orleans.Configuration.EndpointOptions>>().Value;
        Assert.Equal((11111 + 7, 30000 + 7), (endpoints.SiloPort, endpoints.GatewayPort));
        Assert.Throws<OptionsValidationException>(() => IotSiloHost.CreateApplication(["--Iot:PortOffset=-1"]));
    }
}
