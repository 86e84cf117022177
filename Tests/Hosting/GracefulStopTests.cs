using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Hosting;

/// <summary>
/// A node told to stop (SIGTERM: systemd, docker stop, a pod's deletion) with devices connected: MQTT 5 devices are told
/// to go elsewhere (DISCONNECT 0x8B), and the node exits cleanly instead of waiting out the host's shutdown timeout
/// and crashing on it (which it did while Kestrel waited for MQTT connections that only the MQTT server's own later
/// stop would close).
/// </summary>
public sealed class GracefulStopTests
{
    [Fact]
    public async Task ANodeWithConnectedDevices_StopsCleanly_AndTellsMqtt5DevicesTheServerIsShuttingDown()
    {
        await using var node = SiloProcess.Start(new Dictionary<string, string>());
        await node.WaitUntilReadyAsync();
        var persistent = new MqttClientFactory().CreateMqttClient();
        await persistent.ConnectAsync(new MqttClientOptionsBuilder().WithTcpServer("127.0.0.1", node.MqttPort).WithClientId(Ids.NewId("stay"))
            .WithProtocolVersion(MqttProtocolVersion.V311).WithCleanSession(false).Build());
        await persistent.SubscribeAsync("stay/#", MqttQualityOfServiceLevel.AtLeastOnce);
        using var modern = await node.ConnectAsync(Ids.NewId("modern"), MqttProtocolVersion.V500);
        var told = new TaskCompletionSource<MqttClientDisconnectReason>(TaskCreationOptions.RunContinuationsAsynchronously);
        modern.DisconnectedAsync += e =>
        {
            told.TrySetResult(e.Reason);
            return Task.CompletedTask;
        };

        node.Terminate();

        // Well inside the host's 30 s shutdown timeout, which the stop used to wait out.
        var exitCode = await node.WaitForExitAsync(TimeSpan.FromSeconds(20));
        Assert.True(exitCode == 0, $"exit code {exitCode}:\n{node.Output}");
        Assert.Equal(MqttClientDisconnectReason.ServerShuttingDown, await told.Task.WaitAsync(TimeSpan.FromSeconds(5)));
        Assert.DoesNotContain("Unhandled exception", node.Output, StringComparison.Ordinal);
        persistent.Dispose();
    }
}
