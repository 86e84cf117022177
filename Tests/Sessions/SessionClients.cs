using System.Collections.Concurrent;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Sessions;

/// <summary>What a client received, in order.</summary>
public sealed class Inbox
{
    private readonly ConcurrentQueue<MqttApplicationMessage> _messages = new();

    public static Inbox Of(IMqttClient client)
    {
        var inbox = new Inbox();
        client.ApplicationMessageReceivedAsync += e =>
        {
            inbox._messages.Enqueue(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        return inbox;
    }

    public IReadOnlyList<MqttApplicationMessage> Messages => [.. _messages];

    public IReadOnlyList<string> Payloads(string topicPrefix) =>
        [.. _messages.Where(m => m.Topic.StartsWith(topicPrefix, StringComparison.Ordinal)).Select(m => m.ConvertPayloadToString())];

    public Task<IReadOnlyList<string>> WaitAsync(string topicPrefix, int count, string what, TimeSpan? timeout = null) =>
        Eventually.Get(() => Task.FromResult(Payloads(topicPrefix)), p => p.Count >= count, what, timeout);
}

/// <summary>Connecting with persistent sessions and wills, and publishing numbered messages.</summary>
public static class SessionClients
{
    public static MqttClientOptionsBuilder Persistent(this MqttClientOptionsBuilder options, bool cleanStart, uint expirySeconds, MqttProtocolVersion version = MqttProtocolVersion.V500) =>
        version == MqttProtocolVersion.V500
            ? options.WithCleanStart(cleanStart).WithSessionExpiryInterval(expirySeconds)
            : options.WithCleanSession(cleanStart);

    /// <summary>Connects a client whose inbox is attached before CONNACK (queued messages follow it at once).</summary>
    public static async Task<(IMqttClient Client, Inbox Inbox, MqttClientConnectResult Result)> ConnectAsync(NodeFixture node, MqttClientOptionsBuilder options)
    {
        var client = node.NewClient();
        var inbox = Inbox.Of(client);
        var result = await client.ConnectAsync(options.Build());
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        return (client, inbox, result);
    }

    public static Task SubscribeAsync(this IMqttClient client, string filter, MqttQualityOfServiceLevel qos) =>
        client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, qos).Build());

    public static async Task PublishNumberedAsync(this IMqttClient publisher, string topic, IEnumerable<int> numbers, MqttQualityOfServiceLevel qos = MqttQualityOfServiceLevel.AtLeastOnce)
    {
        foreach (var n in numbers)
        {
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(n.ToString(System.Globalization.CultureInfo.InvariantCulture)).WithQualityOfServiceLevel(qos).Build());
        }
    }

    /// <summary>
    /// Publishes markers to <paramref name="topic"/> until each inbox (members of one shared group) has one. One
    /// publisher's messages arrive in publish order, so whatever it published before has reached these members by
    /// then: a negative check ("nothing twice") that waits on an event instead of sleeping.
    /// </summary>
    public static async Task PublishMarkersUntilEachReceivesAsync(this IMqttClient publisher, string topic, params Inbox[] members)
    {
        for (var sent = 1; ; sent++)
        {
            await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("marker").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            await Eventually.True(() => Task.FromResult(members.Sum(m => m.Payloads(topic).Count) >= sent), "the marker delivered to a member");
            if (members.All(m => m.Payloads(topic).Count > 0))
            {
                return;
            }

            Assert.True(sent < 64, "markers never reached every member");
        }
    }

    /// <summary>
    /// Disconnects and waits until the cluster has the session offline. DisconnectAsync returns when DISCONNECT is
    /// written; messages routed before the server reads it still go to (and may be acknowledged by) the connection.
    /// </summary>
    public static async Task DisconnectAndWaitOfflineAsync(this IMqttClient client, HttpClient api, string clientId)
    {
        await client.DisconnectAsync();
        await Eventually.True(async () => (await api.GetStringAsync($"/api/sessions/{clientId}")).Contains("\"connected\":false", StringComparison.Ordinal), "the session offline");
    }

    /// <summary>Ends the connection without DISCONNECT, as a device losing power does.</summary>
    public static void Drop(this IMqttClient client) => client.Dispose();
}
