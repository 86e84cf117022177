using System.Collections.Concurrent;
using System.Text.Json;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Gateway;

/// <summary>AWS IoT lifecycle events, as a backend watching <c>$aws/events/#</c> relies on them.</summary>
public abstract class LifecycleEventsTests
{
    protected static async Task<ConcurrentQueue<(string Topic, JsonElement Body)>> WatchAsync(IMqttClient watcher, string filter)
    {
        var events = new ConcurrentQueue<(string, JsonElement)>();
        watcher.ApplicationMessageReceivedAsync += e =>
        {
            if (Grains.Abstractions.Routing.TopicFilter.Matches(filter, e.ApplicationMessage.Topic))
            {
                events.Enqueue((e.ApplicationMessage.Topic, JsonDocument.Parse(e.ApplicationMessage.ConvertPayloadToString()).RootElement.Clone()));
            }

            return Task.CompletedTask;
        };
        await watcher.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MqttQualityOfServiceLevel.AtLeastOnce).Build());
        return events;
    }

    protected static Task<(string Topic, JsonElement Body)> NextAsync(ConcurrentQueue<(string Topic, JsonElement Body)> events, string topic) =>
        Eventually.Get(() => Task.FromResult(events.FirstOrDefault(e => e.Topic == topic)), e => e.Topic is not null, topic);

    protected static async Task AssertPresenceCycleAsync(NodeFixture deviceNode, NodeFixture watcherNode)
    {
        var deviceId = NewId("dev");
        var watcher = await watcherNode.ConnectAsync(NewId("watch"));
        var events = await WatchAsync(watcher, $"$aws/events/+/+/{deviceId}");

        var device = await deviceNode.ConnectAsync(deviceId);
        await device.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"cmd/{deviceId}/#").Build());
        await device.UnsubscribeAsync($"cmd/{deviceId}/#");
        await device.DisconnectAsync();

        var connected = (await NextAsync(events, $"$aws/events/presence/connected/{deviceId}")).Body;
        var subscribed = (await NextAsync(events, $"$aws/events/subscriptions/subscribed/{deviceId}")).Body;
        var unsubscribed = (await NextAsync(events, $"$aws/events/subscriptions/unsubscribed/{deviceId}")).Body;
        var disconnected = (await NextAsync(events, $"$aws/events/presence/disconnected/{deviceId}")).Body;

        Assert.Equal(deviceId, connected.GetProperty("clientId").GetString());
        Assert.Equal("connected", connected.GetProperty("eventType").GetString());
        Assert.Equal("127.0.0.1", connected.GetProperty("ipAddress").GetString());
        Assert.InRange(connected.GetProperty("timestamp").GetInt64(), DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds(), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var session = connected.GetProperty("sessionIdentifier").GetString();
        Assert.True(Guid.TryParse(session, out _));
        Assert.Equal("subscribed", subscribed.GetProperty("eventType").GetString());
        Assert.Equal([$"cmd/{deviceId}/#"], subscribed.GetProperty("topics").EnumerateArray().Select(t => t.GetString()));
        Assert.Equal("unsubscribed", unsubscribed.GetProperty("eventType").GetString());
        Assert.Equal(session, subscribed.GetProperty("sessionIdentifier").GetString());

        Assert.Equal("disconnected", disconnected.GetProperty("eventType").GetString());
        Assert.Equal(session, disconnected.GetProperty("sessionIdentifier").GetString());
        Assert.True(disconnected.GetProperty("clientInitiatedDisconnect").GetBoolean());
        Assert.Equal(DisconnectReasons.ClientInitiated, disconnected.GetProperty("disconnectReason").GetString());
        Assert.False(disconnected.TryGetProperty("ipAddress", out _));
        // A connect and its disconnect share the version number, and the next connection gets a larger one.
        var version = connected.GetProperty("versionNumber").GetInt64();
        Assert.Equal(version, disconnected.GetProperty("versionNumber").GetInt64());

        var again = await deviceNode.ConnectAsync(deviceId);
        await Eventually.True(() => Task.FromResult(events.Count(e => e.Topic == $"$aws/events/presence/connected/{deviceId}") == 2), "the second connect event");
        Assert.True(events.Where(e => e.Topic == $"$aws/events/presence/connected/{deviceId}").Last().Body.GetProperty("versionNumber").GetInt64() > version);
        await again.DisconnectAsync();
    }
}

[Collection(NodeCollection.Name)]
public sealed class LifecycleEventsOnOneNodeTests(NodeFixture node) : LifecycleEventsTests
{
    [Fact]
    public Task PresenceAndSubscriptionEvents_HaveAwsFields() => AssertPresenceCycleAsync(node, node);

    [Fact]
    public async Task Takeover_IsReportedAsDuplicateClientId()
    {
        var deviceId = NewId("dev");
        var watcher = await node.ConnectAsync(NewId("watch"));
        var events = await WatchAsync(watcher, $"$aws/events/presence/disconnected/{deviceId}");
        await node.ConnectAsync(deviceId);

        await node.ConnectAsync(deviceId);

        var disconnected = (await NextAsync(events, $"$aws/events/presence/disconnected/{deviceId}")).Body;
        Assert.Equal(DisconnectReasons.DuplicateClientId, disconnected.GetProperty("disconnectReason").GetString());
        Assert.False(disconnected.GetProperty("clientInitiatedDisconnect").GetBoolean());
    }

    [Fact]
    public async Task ClientIdsWithWildcards_GetNoEvents()
    {
        var suffix = NewId("w");
        var watcher = await node.ConnectAsync(NewId("watch"));
        var events = await WatchAsync(watcher, "$aws/events/presence/connected/+");

        await node.ConnectAsync($"dev+{suffix}");
        await node.ConnectAsync($"marker-{suffix}");

        await NextAsync(events, $"$aws/events/presence/connected/marker-{suffix}");
        Assert.DoesNotContain(events, e => e.Topic.Contains($"dev+{suffix}", StringComparison.Ordinal));
    }
}

[Collection(TwoNodeCollection.Name)]
public sealed class LifecycleEventsAcrossNodesTests(TwoNodeFixture nodes) : LifecycleEventsTests
{
    [Fact]
    public Task EventsOfADeviceOnA_ReachAWatcherOnB() => AssertPresenceCycleAsync(nodes.A, nodes.B);
}
