using System.Net.Sockets;
using System.Text;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Hosting;

/// <summary>A node of its own (TLS listeners open, as by default), so that everything it logged from its start belongs to the test below.</summary>
public sealed class QuietNodeFixture : SecureNodeFixture;

/// <summary>
/// Runs alone, after the parallel collections: Orleans rightly warns when a busy machine stalls its thread pool for a
/// second, and four test collections starting nodes on two cores do that now and then (CI saw a 1.09 s stall). That
/// warning is about the machine, not the node; this test is about what the node itself warns of.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class QuietMachine
{
    public const string Name = "quiet machine";
}

/// <summary>
/// A normal start and normal use log nothing at warning or above but the documented development-mode warnings: an
/// operator who sees a warning must be able to trust that something needs a look.
/// </summary>
[Collection(QuietMachine.Name)]
public sealed class QuietLogTests(QuietNodeFixture node) : IClassFixture<QuietNodeFixture>
{
    /// <summary>What the embedded default warns about on purpose (README: development access, nothing durable, the CA key's password).</summary>
    private static readonly string[] Documented =
    [
        "DEVELOPMENT ACCESS",
        "EMBEDDED MODE: NOTHING IS DURABLE",
        "The platform CA's private key is stored encrypted with the development password",
    ];

    [Fact]
    public async Task ARealisticSession_LogsOnlyTheDocumentedWarnings()
    {
        var id = Ids.NewId("quiet");

        // Devices of both protocol versions, with and without a client id; subscribe, publish, retain.
        var device = await node.ConnectAsync(id);
        var old = await node.ConnectAsync(id + "-311", MqttProtocolVersion.V311);
        var anonymous = node.NewClient();
        await anonymous.ConnectAsync(node.Options("").WithCleanStart().Build());
        await old.SubscribeAsync($"{id}/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.PublishStringAsync($"{id}/t", "21", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.PublishStringAsync($"{id}/status", "on", MqttQualityOfServiceLevel.AtLeastOnce, retain: true);

        // Shadows over MQTT and HTTP, the registry, a rule.
        await device.SubscribeAsync($"$aws/things/{id}/shadow/update/accepted", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.PublishStringAsync($"$aws/things/{id}/shadow/update", """{"state":{"reported":{"on":true}}}""", MqttQualityOfServiceLevel.AtLeastOnce);
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/things/{id}/shadow", new StringContent("""{"state":{"desired":{"on":false}}}""", Encoding.UTF8, "application/json")));
        await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{id}/status"));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/rules/{id.Replace('-', '_')}", new StringContent(
            $$$"""{"sql":"SELECT * FROM '{{{id}}}/t'","actions":[{"republish":{"topic":"{{{id}}}/copy"}}]}""", Encoding.UTF8, "application/json")));

        // Clients that go away without DISCONNECT: a device losing its network, a tool that just exits.
        device.Dispose();
        old.Dispose();
        using (var socket = new TcpClient())
        {
            await socket.ConnectAsync("127.0.0.1", node.MqttPort);   // and one that never says anything
        }

        await anonymous.DisconnectAsync();
        await Eventually.True(async () => !(await node.GetThingAsync(id))!.Connectivity.Connected, "the dropped device recorded");

        var unexpected = node.Logs.Entries.Where(e => !Documented.Any(d => e.Message.Contains(d, StringComparison.Ordinal))).ToList();
        Assert.True(unexpected.Count == 0, "Unexpected warnings:\n" + string.Join("\n", unexpected));
    }
}
