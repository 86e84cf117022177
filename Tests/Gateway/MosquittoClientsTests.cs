using System.Diagnostics;
using MQTTnet;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Gateway;

/// <summary>Interoperability with a client we did not write: Eclipse Mosquitto's command-line tools.</summary>
[Collection(NodeCollection.Name)]
public sealed class MosquittoClientsTests(NodeFixture node)
{
    private static readonly string[] ToolDirectories = ["/usr/bin", "/usr/local/bin"];

    internal static string Tool(string name) =>
        ToolDirectories.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"{name} is not installed (Debian: apt-get install -y mosquitto-clients); these tests do not skip.");

    [Fact]
    public async Task MosquittoPub_WithoutClientId_IsAcceptedWithAnAssignedOne()
    {
        // The issue's own acceptance check: mosquitto_pub with no -i sends an empty client id (3.1.1, clean).
        var root = "mqa-" + Guid.NewGuid().ToString("N")[..8];
        var port = node.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var pub = Start(Tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", port, "-t", $"{root}/a/b", "-m", "hi");
        await pub.WaitForExitAsync();
        Assert.Equal(0, pub.ExitCode);
    }

    [Theory]
    [InlineData("mqttv311", "0")]
    [InlineData("mqttv311", "1")]
    [InlineData("mqttv5", "1")]
    public async Task MosquittoSub_ReceivesMosquittoPub(string version, string qos)
    {
        var root = "mq-" + Guid.NewGuid().ToString("N")[..8];
        var port = node.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture);

        // The subscription is registered once its lifecycle event is out (published before SUBACK), so the test
        // waits for that event instead of sleeping.
        var watcher = await node.ConnectAsync($"{root}-watch");
        var subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.ApplicationMessageReceivedAsync += _ =>
        {
            subscribed.TrySetResult();
            return Task.CompletedTask;
        };
        await watcher.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"$aws/events/subscriptions/subscribed/{root}-sub").Build());

        using var sub = Start(Tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", port, "-V", version, "-t", $"{root}/#", "-C", "1", "-v", "-W", "20", "-i", $"{root}-sub");
        await subscribed.Task.WaitAsync(TimeSpan.FromSeconds(15));

        using var pub = Start(Tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", port, "-V", version, "-q", qos, "-t", $"{root}/a/b", "-m", "hi", "-i", $"{root}-pub");
        await pub.WaitForExitAsync();
        Assert.Equal(0, pub.ExitCode);

        var output = await sub.StandardOutput.ReadToEndAsync();
        await sub.WaitForExitAsync();
        Assert.Equal($"{root}/a/b hi", output.Trim());
        var publisher = await Eventually.Get(() => node.GetThingAsync($"{root}-pub"), s => s is { Usage.MessagesIn: 1 }, "the publisher's counters");
        Assert.Equal(version == "mqttv5" ? 5 : 4, publisher!.Connectivity.ProtocolVersion);
    }

    private static Process Start(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start)!;
    }
}
