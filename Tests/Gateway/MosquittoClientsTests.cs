using System.Diagnostics;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Gateway;

/// <summary>Interoperability with a client we did not write: Eclipse Mosquitto's command-line tools.</summary>
[Collection(NodeCollection.Name)]
public sealed class MosquittoClientsTests(NodeFixture node)
{
    private static readonly string[] ToolDirectories = ["/usr/bin", "/usr/local/bin"];

    private static string Tool(string name) =>
        ToolDirectories.Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"{name} is not installed (Debian: apt-get install -y mosquitto-clients); these tests do not skip.");

    [Theory]
    [InlineData("mqttv311", "0")]
    [InlineData("mqttv311", "1")]
    [InlineData("mqttv5", "1")]
    public async Task MosquittoSub_ReceivesMosquittoPub(string version, string qos)
    {
        var root = "mq-" + Guid.NewGuid().ToString("N")[..8];
        var port = node.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        using var sub = Start(Tool("mosquitto_sub"), "-h", "127.0.0.1", "-p", port, "-V", version, "-t", $"{root}/#", "-C", "1", "-v", "-W", "20", "-i", $"{root}-sub");

        // Retained, so the subscriber gets it whether its SUBSCRIBE lands before or after the publish (no sleep).
        using var pub = Start(Tool("mosquitto_pub"), "-h", "127.0.0.1", "-p", port, "-V", version, "-q", qos, "-r", "-t", $"{root}/a/b", "-m", "hi", "-i", $"{root}-pub");
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
