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
}
