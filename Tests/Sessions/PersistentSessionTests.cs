using System.Net;
using System.Net.Http.Json;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Sessions;

/// <summary>Persistent sessions on one node: kept while offline, resumed with their queue, ended as asked.</summary>
[Collection(NodeCollection.Name)]
public sealed class PersistentSessionTests(NodeFixture node)
{
    [Theory]
    [InlineData(MqttProtocolVersion.V500)]
    [InlineData(MqttProtocolVersion.V311)]
    public async Task OfflineSession_KeepsSubscriptions_AndQueuesQos1InOrder_ResumedWithSessionPresent(MqttProtocolVersion version)
    {
        var since = DateTime.UtcNow;
        var clientId = NewId("persist");
        var topic = $"cmd/{clientId}";
        // MQTT 3.1.1 asks for a persistent session with clean session 0; MQTT 5 with a session expiry.
        var options = node.Options(clientId, version).Persistent(cleanStart: version == MqttProtocolVersion.V500, expirySeconds: 300, version);
        var (first, _, firstResult) = await SessionClients.ConnectAsync(node, options);
        Assert.False(firstResult.IsSessionPresent);
        await first.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await first.DisconnectAndWaitOfflineAsync(node.Http, clientId);

        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, [1, 2]);
        await publisher.PublishNumberedAsync(topic, [99], MqttQualityOfServiceLevel.AtMostOnce);   // QoS 0: not kept offline
        await publisher.PublishNumberedAsync(topic, [3]);
        await Eventually.True(async () => (await GetSessionAsync(clientId))?.QueuedMessages == 3, "three messages queued");

        var (_, inbox, resumed) = await SessionClients.ConnectAsync(node, node.Options(clientId, version).Persistent(cleanStart: false, expirySeconds: 300, version));
        Assert.True(resumed.IsSessionPresent);
        Assert.Equal(["1", "2", "3"], await inbox.WaitAsync(topic, 3, "the queued messages"));
        Assert.All(inbox.Messages, m => Assert.Equal(MqttQualityOfServiceLevel.AtLeastOnce, m.QualityOfServiceLevel));

        // The subscription came back with the session: new messages arrive live, and the queue is empty.
        await publisher.PublishNumberedAsync(topic, [4]);
        Assert.Equal(["1", "2", "3", "4"], await inbox.WaitAsync(topic, 4, "a live message after the resume"));
        Assert.Equal(0, (await GetSessionAsync(clientId))!.QueuedMessages);
        node.AssertNoErrorsLogged(since);
    }

    /// <summary>
    /// A device that comes and goes while a publisher keeps publishing: every acknowledged QoS 1 message reaches it, the
    /// ones published while it resumes too (its restored subscriptions take over from the offline matching; the session
    /// used to stop being matched offline before they did, and a message routed in between went nowhere).
    /// </summary>
    [Fact]
    public async Task ResumingWhileMessagesFlow_LosesNone()
    {
        var clientId = NewId("flow");
        var topic = $"cmd/{clientId}";
        var received = new System.Collections.Concurrent.ConcurrentDictionary<string, int>();
        IMqttClient Device()
        {
            var client = node.NewClient();
            client.ApplicationMessageReceivedAsync += e =>
            {
                received.AddOrUpdate(e.ApplicationMessage.ConvertPayloadToString(), 1, (_, n) => n + 1);
                return Task.CompletedTask;
            };
            return client;
        }

        var device = Device();
        await device.ConnectAsync(node.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300).Build());
        await device.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);

        var publisher = await node.ConnectAsync(NewId("pub"));
        var acknowledged = new System.Collections.Concurrent.ConcurrentBag<string>();
        using var stop = new CancellationTokenSource();
        var last = 0;
        var phases = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var publishing = Task.Run(async () =>
        {
            for (var n = 0; !stop.IsCancellationRequested; n++)
            {
                Volatile.Write(ref last, n);
                var payload = n.ToString(System.Globalization.CultureInfo.InvariantCulture);
                if ((await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build())).IsSuccess)
                {
                    acknowledged.Add(payload);
                }
            }
        });

        for (var cycle = 0; cycle < 8; cycle++)
        {
            var before = acknowledged.Count;
            await Eventually.True(() => Task.FromResult(acknowledged.Count >= before + 20), "publishing while connected");
            phases.Enqueue($"drop@{Volatile.Read(ref last)}");
            device.Drop();
            await Eventually.True(async () => (await GetSessionAsync(clientId))?.Connected == false, "the session offline");
            phases.Enqueue($"offline@{Volatile.Read(ref last)}");
            before = acknowledged.Count;
            await Eventually.True(() => Task.FromResult(acknowledged.Count >= before + 20), "publishing while offline");
            device = Device();
            phases.Enqueue($"connect@{Volatile.Read(ref last)}");
            Assert.True((await device.ConnectAsync(node.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300).Build())).IsSessionPresent);
            phases.Enqueue($"connected@{Volatile.Read(ref last)}");
        }

        await stop.CancelAsync();
        await publishing;
        var all = acknowledged.ToList();
        try
        {
            await Eventually.True(() => Task.FromResult(all.All(received.ContainsKey)), "every acknowledged message delivered");
        }
        catch (TimeoutException ex)
        {
            var missing = all.Where(a => !received.ContainsKey(a)).Select(int.Parse).Order();
            var session = await GetSessionAsync(clientId);
            throw new TimeoutException($"{ex.Message}: {all.Count} acknowledged, queued {session?.QueuedMessages}, missing {string.Join(", ", missing.Take(40))}; phases (at publish number): {string.Join(" ", phases)}", ex);
        }

        device.Dispose();
    }

    [Fact]
    public async Task QueuedMessages_KeepTheirExpiry_ExpiredOnesAreNotDelivered()
    {
        var clientId = NewId("exp");
        var topic = $"cmd/{clientId}";
        var (first, _, _) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await first.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await first.DisconnectAndWaitOfflineAsync(node.Http, clientId);
        var publisher = await node.ConnectAsync(NewId("pub"));
        foreach (var (payload, expiry) in new[] { ("short", 1u), ("long", 600u) })
        {
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload)
                .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithMessageExpiryInterval(expiry).Build());
        }

        await Eventually.True(async () => (await GetSessionAsync(clientId))?.QueuedMessages == 2, "both queued");
        await Eventually.True(async () => (await GetSessionAsync(clientId))?.QueuedMessages == 1, "the short one expired");

        // Queued in order: had the expired one been delivered, it would have come first.
        var (_, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.Equal(["long"], await inbox.WaitAsync(topic, 1, "the unexpired message"));
        Assert.InRange(inbox.Messages.Single().MessageExpiryInterval, 590u, 599u);   // what is left of it
    }

    [Fact]
    public async Task CleanStart_DiscardsTheSession()
    {
        var clientId = NewId("clean");
        var topic = $"cmd/{clientId}";
        var (first, _, _) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await first.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await first.DisconnectAndWaitOfflineAsync(node.Http, clientId);
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, [1]);
        await Eventually.True(async () => (await GetSessionAsync(clientId))?.QueuedMessages == 1, "the message queued");

        var (client, inbox, result) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: true, expirySeconds: 0));
        Assert.False(result.IsSessionPresent);
        var marker = $"marker/{clientId}";
        await client.SubscribeAsync(marker, MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishNumberedAsync(topic, [2]);
        await publisher.PublishNumberedAsync(marker, [0]);   // same publisher: anything on the old subscription comes first
        await inbox.WaitAsync(marker, 1, "the marker");
        Assert.Empty(inbox.Payloads(topic));   // neither the queued message nor the old subscription
        Assert.Equal(HttpStatusCode.NotFound, (await node.Http.GetAsync($"/api/sessions/{clientId}")).StatusCode);
    }

    [Fact]
    public async Task SessionExpiryAboveTheMaximum_IsLowered_AndCONNACKSaysSo()
    {
        var (_, _, result) = await SessionClients.ConnectAsync(node, node.Options(NewId("long")).Persistent(cleanStart: true, expirySeconds: 100_000));
        Assert.Equal(3600u, result.SessionExpiryInterval);   // AWS default maximum: 1 hour
    }

    [Fact]
    public async Task DeleteConnectionWithCleanSession_EndsThePersistentSession()
    {
        // (MQTT 5 DISCONNECT with session expiry 0 would too, but MQTTnet, client and server, cannot tell an
        // expiry of 0 from none on DISCONNECT, so this path is AWS's DeleteConnection.)
        var clientId = NewId("end");
        var (client, _, _) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await client.SubscribeAsync($"cmd/{clientId}", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.Single((await GetSessionAsync(clientId))!.Subscriptions);
        Assert.True((await node.Http.DeleteAsync($"/api/connections/{clientId}?cleanSession=true")).IsSuccessStatusCode);

        await Eventually.True(async () => await GetSessionAsync(clientId) is null, "the session to end");
        var (_, _, again) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.False(again.IsSessionPresent);
    }

    [Fact]
    public async Task DeleteConnection_KeepsThePersistentSession()
    {
        var clientId = NewId("keep");
        var (client, _, _) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await client.SubscribeAsync($"cmd/{clientId}", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.True((await node.Http.DeleteAsync($"/api/connections/{clientId}")).IsSuccessStatusCode);

        await Eventually.True(async () => await GetSessionAsync(clientId) is { Connected: false }, "the connection to close");
        var (_, _, again) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.True(again.IsSessionPresent);
    }

    [Fact]
    public async Task PersistentSessionsDoNotCrossMqttVersions()
    {
        var clientId = NewId("cross");
        var (v5, _, _) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await v5.SubscribeAsync($"cmd/{clientId}", MqttQualityOfServiceLevel.AtLeastOnce);
        await v5.DisconnectAsync();
        var (_, _, v311) = await SessionClients.ConnectAsync(node, node.Options(clientId, MqttProtocolVersion.V311).Persistent(cleanStart: false, expirySeconds: 0, MqttProtocolVersion.V311));
        Assert.False(v311.IsSessionPresent);
    }

    /// <summary>
    /// The same, with the MQTT 5 connection still open when the 3.1.1 one takes it over on the same node: MQTTnet still
    /// holds the old connection's session then, and must not hand it on when the cluster says there is none (a fast
    /// reconnect under load raced the same way: MQTTnet had not yet dropped the closed connection's session).
    /// </summary>
    [Fact]
    public async Task ATakeoverAcrossMqttVersions_DoesNotPresentTheOldSession()
    {
        var clientId = NewId("cross-live");
        var (v5, _, _) = await SessionClients.ConnectAsync(node, node.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await v5.SubscribeAsync($"cmd/{clientId}", MqttQualityOfServiceLevel.AtLeastOnce);

        var (v311, inbox, connack) = await SessionClients.ConnectAsync(node, node.Options(clientId, MqttProtocolVersion.V311).Persistent(cleanStart: false, expirySeconds: 0, MqttProtocolVersion.V311));
        Assert.False(connack.IsSessionPresent);

        // Nor its subscriptions: the new connection subscribed to the marker only.
        var publisher = await node.ConnectAsync(NewId("cross-pub"));
        await publisher.PublishStringAsync($"cmd/{clientId}", "for the old session", MqttQualityOfServiceLevel.AtLeastOnce);
        await v311.SubscribeAsync($"marker/{clientId}", MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishStringAsync($"marker/{clientId}", "after", MqttQualityOfServiceLevel.AtLeastOnce);
        await inbox.WaitAsync("marker/", 1, "the marker");
        Assert.Empty(inbox.Payloads("cmd/"));
        v5.Dispose();
    }

    private async Task<SessionInfo?> GetSessionAsync(string clientId)
    {
        var response = await node.Http.GetAsync($"/api/sessions/{clientId}");
        if (response.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }

        response.EnsureSuccessStatusCode();
        return await response.Content.ReadFromJsonAsync<SessionInfo>(Json.Web);
    }
}
