using System.Net;
using System.Net.Http.Json;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Sessions;

/// <summary>
/// A node dies (kill -9) in PostgreSQL mode: the surviving node adopts what it hosted. The persistent session
/// resumes on the survivor with the messages queued before and after the death, the will of the client that was
/// connected to the dead node is published, its thing shows the lost connection, retained messages stay.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class NodeDeathTests(PostgresServer postgres)
{
    private static readonly TimeSpan Adoption = TimeSpan.FromSeconds(90);

    private static Dictionary<string, string> Settings(string connectionString, string clusterId) => new()
    {
        ["Iot__Storage"] = "Postgres",
        ["ConnectionStrings__Iot"] = connectionString,
        ["Orleans__ClusterId"] = clusterId,
        ["Iot__Routing__RefreshInterval"] = "00:00:00.500",
        ["Iot__Sessions__HostListFlushInterval"] = "00:00:00.100",
        ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
        ["Orleans__Membership__NumMissedProbesLimit"] = "2",
        ["Orleans__Membership__NumVotesForDeathDeclaration"] = "1",
    };

    private static MqttClientOptionsBuilder Options(SiloProcess node, string clientId) => new MqttClientOptionsBuilder()
        .WithTcpServer("127.0.0.1", node.MqttPort)
        .WithClientId(clientId)
        .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
        .WithTimeout(TimeSpan.FromSeconds(30));

    private static async Task<(IMqttClient Client, Inbox Inbox, MqttClientConnectResult Result)> ConnectAsync(MqttClientOptionsBuilder options)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        var inbox = Inbox.Of(client);
        var result = await client.ConnectAsync(options.Build());
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        return (client, inbox, result);
    }

    private static async Task<SessionInfo?> GetSessionAsync(SiloProcess node, string clientId)
    {
        var response = await node.Http.GetAsync($"/api/sessions/{clientId}");
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();   // 5xx while the dead silo's grains are not yet declared dead: poll again
        return await response.Content.ReadFromJsonAsync<SessionInfo>(Json.Web);
    }

    [Fact]
    public async Task KillDashNine_SurvivorAdoptsSessionsAndWills()
    {
        var settings = Settings(await postgres.CreateDatabaseAsync(), "death-" + Guid.NewGuid().ToString("N")[..8]);
        await using var survivor = SiloProcess.Start(settings);
        await survivor.WaitUntilReadyAsync();
        await using var doomed = SiloProcess.Start(settings);
        await doomed.WaitUntilReadyAsync();
        var id = Guid.NewGuid().ToString("N")[..8];
        var (persistentId, willId, topic, willTopic) = ($"persist-{id}", $"will-{id}", $"cmd/persist-{id}", $"will/{id}");

        using var watcher = (await ConnectAsync(Options(survivor, $"watch-{id}"))).Client;
        var watched = Inbox.Of(watcher);
        await watcher.SubscribeAsync(willTopic, MqttQualityOfServiceLevel.AtLeastOnce);

        // A persistent session goes offline on the doomed node; two messages are queued for it.
        using (var device = (await ConnectAsync(Options(doomed, persistentId).Persistent(cleanStart: true, expirySeconds: 600))).Client)
        {
            await device.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
            var retained = await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"cfg/{id}").WithPayload("v1").WithRetainFlag().WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            Assert.True(retained.IsSuccess);
            await device.DisconnectAsync();
        }

        using var publisher = (await ConnectAsync(Options(survivor, $"pub-{id}"))).Client;
        await publisher.PublishNumberedAsync(topic, [1, 2]);
        var before = await Eventually.Get(() => GetSessionAsync(survivor, persistentId), s => s is { QueuedMessages: 2 }, "two messages queued", TimeSpan.FromSeconds(30));

        // A client with a will, and a clean one without, are connected to the doomed node when it dies.
        var cleanId = $"clean-{id}";
        var presence = await watcher.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"$aws/events/presence/+/{cleanId}", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.All(presence.Items, i => Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS1, i.ResultCode));
        var (clean, _, _) = await ConnectAsync(Options(doomed, cleanId));
        var (withWill, _, _) = await ConnectAsync(Options(doomed, willId).WithWillTopic(willTopic).WithWillPayload("gone").WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce));
        await Eventually.True(async () => await survivor.Http.GetStringAsync($"/api/things/{willId}/status") is { } s && s.Contains("\"connected\":true", StringComparison.Ordinal), "the connection recorded");
        // The doomed node lists the clients it hosts in batches (every 100 ms here); adoption goes by that list.
        var doomedId = System.Text.Json.JsonDocument.Parse(await doomed.Http.GetStringAsync("/health")).RootElement.GetProperty("nodeId").GetString();
        await Eventually.True(async () => (await survivor.Http.GetStringAsync($"/api/nodes/{Uri.EscapeDataString(doomedId!)}/clients")).Contains($"\"{willId}\"", StringComparison.Ordinal), "the client listed by its node");
        // A clean connection without a will is listed at the list's next full write (HostList.LazyFlushes).
        await Eventually.True(async () => (await survivor.Http.GetStringAsync($"/api/nodes/{Uri.EscapeDataString(doomedId!)}/clients")).Contains($"\"{cleanId}\"", StringComparison.Ordinal), "the clean client listed by its node");

        var cleanOpen = await Eventually.Get(
            async () => await survivor.Http.GetFromJsonAsync<ThingStatus>($"/api/things/{cleanId}/status", Json.Web),
            t => t is { Connectivity.Connected: true }, "the clean connection shown");
        var connectedEvent = System.Text.Json.JsonDocument.Parse((await watched.WaitAsync($"$aws/events/presence/connected/{cleanId}", 1, "the clean client's connected event"))[0]).RootElement;

        doomed.Kill();
        withWill.Dispose();
        clean.Dispose();

        Assert.Equal(["gone"], await watched.WaitAsync(willTopic, 1, "the will of the client on the dead node", Adoption));
        var adopted = await Eventually.Get(() => GetSessionAsync(survivor, persistentId), s => s is not null && s.HostNodeId != before!.HostNodeId, "the session adopted", Adoption);
        Assert.Single(adopted!.Subscriptions);
        await Eventually.True(() => Task.FromResult(survivor.Output.Contains("Sessions: adopted node", StringComparison.Ordinal)), "the adoption logged");
        var thing = await Eventually.Get(
            async () => await survivor.Http.GetFromJsonAsync<ThingStatus>($"/api/things/{willId}/status", Json.Web),
            t => t is { Connectivity.Connected: false }, "the lost connection recorded", Adoption);
        Assert.Equal(DisconnectReasons.ConnectionLost, thing!.Connectivity.DisconnectReason);

        // The clean client's connection is known only to the connection directory: its end is recorded by the
        // adopter, with its start, and published with its connect's version number.
        var cleanLost = await Eventually.Get(
            async () => await survivor.Http.GetFromJsonAsync<ThingStatus>($"/api/things/{cleanId}/status", Json.Web),
            t => t is { Connectivity.Connected: false }, "the clean client's lost connection recorded", Adoption);
        var past = Assert.Single(cleanLost!.History!);
        Assert.Equal((cleanOpen!.Connectivity.SessionId, cleanOpen.Connectivity.Since, DisconnectReasons.ConnectionLost, cleanOpen.Connectivity.Node, 5), (past.SessionId, past.ConnectedAt, past.DisconnectReason, past.Node, past.ProtocolVersion));
        var disconnectedEvent = System.Text.Json.JsonDocument.Parse((await watched.WaitAsync($"$aws/events/presence/disconnected/{cleanId}", 1, "the clean client's disconnected event", Adoption))[0]).RootElement;
        Assert.Equal(DisconnectReasons.ConnectionLost, disconnectedEvent.GetProperty("disconnectReason").GetString());
        Assert.Equal(connectedEvent.GetProperty("versionNumber").GetInt64(), disconnectedEvent.GetProperty("versionNumber").GetInt64());

        // Queued after the death, on the adopting node.
        await publisher.PublishNumberedAsync(topic, [3]);
        await Eventually.True(async () => (await GetSessionAsync(survivor, persistentId))?.QueuedMessages == 3, "the third message queued by the survivor");

        var (resumed, inbox, result) = await ConnectAsync(Options(survivor, persistentId).Persistent(cleanStart: false, expirySeconds: 600));
        using (resumed)
        {
            Assert.True(result.IsSessionPresent);
            Assert.Equal(["1", "2", "3"], await inbox.WaitAsync(topic, 3, "the queue on the survivor"));
        }

        // The retained message set through the dead node is still served.
        var (late, lateInbox, _) = await ConnectAsync(Options(survivor, $"late-{id}"));
        using (late)
        {
            await late.SubscribeAsync($"cfg/{id}", MqttQualityOfServiceLevel.AtLeastOnce);
            Assert.Equal(["v1"], await lateInbox.WaitAsync($"cfg/{id}", 1, "the retained message"));
        }
    }
    /// <summary>
    /// The connection directory's partitions that lived on the dead node's silo lost their entries, among them the
    /// survivor's clean connections: the survivor registers them again, so they stay known (for a takeover, and to the
    /// connections API).
    /// </summary>
    [Fact]
    public async Task KillDashNine_TheSurvivorsCleanConnections_AreKnownToTheConnectionDirectoryAgain()
    {
        var settings = Settings(await postgres.CreateDatabaseAsync(), "dir-" + Guid.NewGuid().ToString("N")[..8]);
        await using var survivor = SiloProcess.Start(settings);
        await survivor.WaitUntilReadyAsync();
        await using var doomed = SiloProcess.Start(settings);
        await doomed.WaitUntilReadyAsync();

        // One client id per partition, and every partition activated from the doomed node first: Orleans places a new
        // activation on the calling silo when both are alike, so these partitions live on the silo that dies.
        var id = Guid.NewGuid().ToString("N")[..8];
        var clientIds = Enumerable.Range(0, 10_000).Select(i => $"clean-{id}-{i}")
            .GroupBy(ConnectionDirectory.PartitionOf).Select(g => g.First()).ToList();
        Assert.Equal(ConnectionDirectory.Partitions, clientIds.Count);
        foreach (var clientId in clientIds)
        {
            Assert.Equal(HttpStatusCode.NotFound, (await doomed.Http.GetAsync($"/api/connections/{clientId}")).StatusCode);
        }

        var clients = new List<IMqttClient>();
        foreach (var clientId in clientIds)
        {
            clients.Add((await ConnectAsync(Options(survivor, clientId))).Client);
        }

        try
        {
            async Task<int> ListedAsync() => (await Task.WhenAll(clientIds.Select(c => survivor.Http.GetAsync($"/api/connections/{c}"))))
                .Count(r => r.IsSuccessStatusCode);
            Assert.Equal(clientIds.Count, await ListedAsync());

            doomed.Kill();
            await Eventually.True(async () =>
            {
                try
                {
                    return await ListedAsync() == clientIds.Count;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, "every clean connection on the survivor listed again", Adoption);
            Assert.All(clients, c => Assert.True(c.IsConnected));
        }
        finally
        {
            clients.ForEach(c => c.Dispose());
        }
    }

    /// <summary>
    /// A node killed and started again in place (systemd's or Kubernetes' restart): the new process meets its
    /// predecessor's sessions in its first refresh, at start, and adopts them; the will of a client that was connected
    /// to the killed node must be published. `bench/resilience-run.sh kill` saw it dropped ("the MQTT server is not
    /// running"): that first refresh came before the node's MQTT server ran. This test asserts the behaviour; it does not
    /// reproduce that timing (it passes on the build before the fix too). The other node refreshes once a minute here,
    /// so the restarted node is the one that adopts.
    /// </summary>
    [Fact]
    public async Task KillDashNineAndRestartInPlace_PublishesTheWillsOfTheKilledNodesClients()
    {
        var settings = Settings(await postgres.CreateDatabaseAsync(), "restart-" + Guid.NewGuid().ToString("N")[..8]);
        await using var other = SiloProcess.Start(new Dictionary<string, string>(settings) { ["Iot__Routing__RefreshInterval"] = "00:01:00" });
        await other.WaitUntilReadyAsync();
        var id = Guid.NewGuid().ToString("N")[..8];
        var willTopic = $"will/{id}";
        // Fixed ports, as a service restarted in place has: Orleans takes a silo on its predecessor's address as its
        // successor and declares the old one dead at once.
        var (mqttPort, httpPort, siloPort, gatewayPort) = (FreePorts.Next(), FreePorts.Next(), FreePorts.Next(), FreePorts.Next());
        await using (var first = SiloProcess.Start(settings, mqttPort, httpPort, siloPort, gatewayPort))
        {
            await first.WaitUntilReadyAsync();
            var (device, _, _) = await ConnectAsync(Options(first, $"will-{id}").WithWillTopic(willTopic).WithWillPayload("gone")
                .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithWillRetain());
            var firstId = System.Text.Json.JsonDocument.Parse(await first.Http.GetStringAsync("/health")).RootElement.GetProperty("nodeId").GetString();
            await Eventually.True(async () => (await other.Http.GetStringAsync($"/api/nodes/{Uri.EscapeDataString(firstId!)}/clients")).Contains($"\"will-{id}\"", StringComparison.Ordinal), "the client listed by its node");
            first.Kill();
            device.Dispose();
        }

        await Task.Delay(TimeSpan.FromSeconds(2));   // the killed node's lease (3 refreshes of 0.5 s) runs out: it is an orphan
        await using var second = SiloProcess.Start(settings, mqttPort, httpPort, siloPort, gatewayPort);
        await second.WaitUntilReadyAsync();
        var (watcher, watched, _) = await ConnectAsync(Options(second, $"watch-{id}"));
        using (watcher)
        {
            // Retained: the watcher gets it whenever it was published.
            await watcher.SubscribeAsync(willTopic, MqttQualityOfServiceLevel.AtLeastOnce);
            Assert.Equal(["gone"], await watched.WaitAsync(willTopic, 1, "the will of the client on the killed node", TimeSpan.FromSeconds(30)));
        }

        Assert.DoesNotContain("is not published: the MQTT server is not running", second.Output, StringComparison.Ordinal);
    }
}
