using System.Diagnostics;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Sessions;

/// <summary>Last will: published on every disconnect the client did not ask for (AWS), with MQTT 5's delay.</summary>
[Collection(NodeCollection.Name)]
public sealed class WillTests(NodeFixture node)
{
    private static MqttClientOptionsBuilder WithWill(MqttClientOptionsBuilder options, string topic, uint delaySeconds = 0) => options
        .WithWillTopic(topic)
        .WithWillPayload("gone")
        .WithWillQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce)
        .WithWillDelayInterval(delaySeconds)
        .WithWillContentType("text/plain");

    /// <summary>
    /// Watches the will topic and the disconnected events of <paramref name="clients"/>: a node publishes a will due
    /// at disconnect before that connection's disconnected event, so once the event is in, such a will is too.
    /// </summary>
    private async Task<Inbox> WatchAsync(string topic, params string[] clients)
    {
        var (watcher, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("watch")));
        await watcher.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        foreach (var clientId in clients)
        {
            await watcher.SubscribeAsync($"$aws/events/presence/disconnected/{clientId}", MqttQualityOfServiceLevel.AtLeastOnce);
        }

        return inbox;
    }

    private static Task<IReadOnlyList<string>> DisconnectedAsync(Inbox inbox, string clientId) =>
        inbox.WaitAsync($"$aws/events/presence/disconnected/{clientId}", 1, $"the disconnected event of {clientId}");

    [Fact]
    public async Task ConnectionLost_PublishesTheWill_WithItsProperties()
    {
        var topic = $"will/{NewId("t")}";
        var inbox = await WatchAsync(topic);
        var (device, _, _) = await SessionClients.ConnectAsync(node, WithWill(node.Options(NewId("dev")), topic));
        device.Drop();

        Assert.Equal(["gone"], await inbox.WaitAsync(topic, 1, "the will"));
        Assert.Equal("text/plain", inbox.Messages.Single().ContentType);
    }

    [Fact]
    public async Task GracefulDisconnect_DoesNotPublishTheWill_ButDisconnectWithWillDoes()
    {
        var topic = $"will/{NewId("t")}";
        var (politeId, askingId) = (NewId("dev"), NewId("dev"));
        var inbox = await WatchAsync(topic, politeId, askingId);
        var (polite, _, _) = await SessionClients.ConnectAsync(node, WithWill(node.Options(politeId), topic));
        await polite.DisconnectAsync();
        var (asking, _, _) = await SessionClients.ConnectAsync(node, WithWill(node.Options(askingId), topic));
        await asking.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.DisconnectWithWillMessage).Build());

        Assert.Equal(["gone"], await inbox.WaitAsync(topic, 1, "the will asked for"));
        await DisconnectedAsync(inbox, politeId);
        await DisconnectedAsync(inbox, askingId);
        Assert.Single(inbox.Payloads(topic));
    }

    [Fact]
    public async Task WillDelay_HoldsTheWill_AndAReconnectWithinItCancelsIt()
    {
        var topic = $"will/{NewId("t")}";
        var inbox = await WatchAsync(topic);
        var comesBack = NewId("back");
        // Its will would be due a second before the other's: had the reconnect not cancelled it, it would come first.
        var options = WithWill(node.Options(comesBack).Persistent(cleanStart: true, expirySeconds: 60), topic, delaySeconds: 1);
        var (first, _, _) = await SessionClients.ConnectAsync(node, options);
        first.Drop();
        await SessionClients.ConnectAsync(node, node.Options(comesBack).Persistent(cleanStart: false, expirySeconds: 60));

        var staysAway = NewId("away");
        var (second, _, _) = await SessionClients.ConnectAsync(node, WithWill(node.Options(staysAway).Persistent(cleanStart: true, expirySeconds: 60), topic, delaySeconds: 2));
        var droppedAt = Stopwatch.StartNew();
        second.Drop();

        await inbox.WaitAsync(topic, 1, "the delayed will");
        Assert.True(droppedAt.Elapsed >= TimeSpan.FromSeconds(1.9), "the will came before its delay");
        Assert.Single(inbox.Payloads(topic));   // only the client that stayed away
    }

    [Fact]
    public async Task DeleteConnection_PublishesTheWill_UnlessPreventWillMessage()
    {
        var topic = $"will/{NewId("t")}";
        var (quiet, loud) = (NewId("quiet"), NewId("loud"));
        var inbox = await WatchAsync(topic, quiet, loud);
        await SessionClients.ConnectAsync(node, WithWill(node.Options(quiet), topic));
        Assert.True((await node.Http.DeleteAsync($"/api/connections/{quiet}?preventWillMessage=true")).IsSuccessStatusCode);
        await SessionClients.ConnectAsync(node, WithWill(node.Options(loud), topic));
        Assert.True((await node.Http.DeleteAsync($"/api/connections/{loud}")).IsSuccessStatusCode);

        await inbox.WaitAsync(topic, 1, "the will of the connection closed by the API");
        await DisconnectedAsync(inbox, quiet);
        await DisconnectedAsync(inbox, loud);
        Assert.Single(inbox.Payloads(topic));
    }
}
