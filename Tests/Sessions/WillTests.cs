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

    private async Task<Inbox> WatchAsync(string topic)
    {
        var (watcher, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("watch")));
        await watcher.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        return inbox;
    }

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
        var inbox = await WatchAsync(topic);
        var (polite, _, _) = await SessionClients.ConnectAsync(node, WithWill(node.Options(NewId("dev")), topic));
        await polite.DisconnectAsync();
        var (asking, _, _) = await SessionClients.ConnectAsync(node, WithWill(node.Options(NewId("dev")), topic));
        await asking.DisconnectAsync(new MqttClientDisconnectOptionsBuilder().WithReason(MqttClientDisconnectOptionsReason.DisconnectWithWillMessage).Build());

        Assert.Equal(["gone"], await inbox.WaitAsync(topic, 1, "the will asked for"));
        await Task.Delay(300);
        Assert.Single(inbox.Payloads(topic));
    }

    [Fact]
    public async Task WillDelay_HoldsTheWill_AndAReconnectWithinItCancelsIt()
    {
        var topic = $"will/{NewId("t")}";
        var inbox = await WatchAsync(topic);
        var comesBack = NewId("back");
        var options = WithWill(node.Options(comesBack).Persistent(cleanStart: true, expirySeconds: 60), topic, delaySeconds: 2);
        var (first, _, _) = await SessionClients.ConnectAsync(node, options);
        first.Drop();
        await SessionClients.ConnectAsync(node, node.Options(comesBack).Persistent(cleanStart: false, expirySeconds: 60));

        var staysAway = NewId("away");
        var (second, _, _) = await SessionClients.ConnectAsync(node, WithWill(node.Options(staysAway).Persistent(cleanStart: true, expirySeconds: 60), topic, delaySeconds: 2));
        var droppedAt = DateTime.UtcNow;
        second.Drop();

        await inbox.WaitAsync(topic, 1, "the delayed will");
        Assert.True(DateTime.UtcNow - droppedAt >= TimeSpan.FromSeconds(1.9), "the will came before its delay");
        await Task.Delay(2500);
        Assert.Single(inbox.Payloads(topic));   // only the client that stayed away
    }

    [Fact]
    public async Task DeleteConnection_PublishesTheWill_UnlessPreventWillMessage()
    {
        var topic = $"will/{NewId("t")}";
        var inbox = await WatchAsync(topic);
        var quiet = NewId("quiet");
        await SessionClients.ConnectAsync(node, WithWill(node.Options(quiet), topic));
        Assert.True((await node.Http.DeleteAsync($"/api/connections/{quiet}?preventWillMessage=true")).IsSuccessStatusCode);
        var loud = NewId("loud");
        await SessionClients.ConnectAsync(node, WithWill(node.Options(loud), topic));
        Assert.True((await node.Http.DeleteAsync($"/api/connections/{loud}")).IsSuccessStatusCode);

        await inbox.WaitAsync(topic, 1, "the will of the connection closed by the API");
        await Task.Delay(300);
        Assert.Single(inbox.Payloads(topic));
    }
}
