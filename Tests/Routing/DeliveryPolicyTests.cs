using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Routing;

/// <summary>
/// A node whose subscriber queues push back early (50 messages) and whose publishers wait for a slow subscriber as
/// long as it takes; AWS's per-connection publish limits off, so publishers go as fast as acknowledgements allow.
/// </summary>
public sealed class BackPressureNodeFixture : NodeFixture
{
    protected override IEnumerable<string> Settings =>
    [
        "Iot:Limits:MaxPublishesPerSecond=0",
        "Iot:Limits:MaxBytesPerSecond=0",
        "Iot:Mqtt:MaxPendingMessagesPerClient=50",
        "Iot:Mqtt:MaxQueuedMessagesPerClient=200",
        "Iot:Mqtt:PublisherWaitLimit=00:10:00",
    ];
}

/// <summary>The same queues, but publishers wait at most 300 ms for a subscriber that does not read.</summary>
public sealed class StalledSubscriberNodeFixture : NodeFixture
{
    protected override IEnumerable<string> Settings =>
    [
        "Iot:Limits:MaxPublishesPerSecond=0",
        "Iot:Limits:MaxBytesPerSecond=0",
        "Iot:Mqtt:MaxPendingMessagesPerClient=50",
        "Iot:Mqtt:MaxQueuedMessagesPerClient=200",
        "Iot:Mqtt:PublisherWaitLimit=00:00:00.300",
    ];
}

/// <summary>
/// The delivery policy (docs/architecture.md): a subscriber that reads as fast as it can loses nothing, however many
/// publishers feed it; one that does not keep up slows its publishers (their PUBACKs wait); one that stops reading is
/// given up on after the wait limit, and what no longer fits its queue is dropped, newest first, counted and logged.
/// </summary>
public sealed class DeliveryPolicyTests(BackPressureNodeFixture node) : IClassFixture<BackPressureNodeFixture>
{
    private const int Publishers = 10;
    private const int PerPublisher = 500;

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task FanInBurst_EveryAcknowledgedQos1Message_ReachesAnMqttnetSubscriber(MqttProtocolVersion version)
    {
        var root = NewId("fanin");
        var received = new ConcurrentQueue<string>();
        var subscriber = node.NewClient();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage.ConvertPayloadToString());
            return Task.CompletedTask;
        };
        await subscriber.ConnectAsync(node.Options(NewId("sub"), version).Build());
        await subscriber.SubscribeAsync($"{root}/+/telemetry", MqttQualityOfServiceLevel.AtLeastOnce);

        await PublishBurstAsync(root, version);

        await Eventually.True(() => Task.FromResult(received.Count >= Publishers * PerPublisher), "every acknowledged message delivered", TimeSpan.FromSeconds(60));
        AssertEachPublisherInOrder(received);
    }

    [Fact]
    public async Task FanInBurst_EveryAcknowledgedQos1Message_ReachesMosquittoSub()
    {
        var root = NewId("fanin-mq");
        var clientId = NewId("mqsub");
        var port = node.MqttPort.ToString(CultureInfo.InvariantCulture);
        var subscribed = await SubscribedEventAsync(clientId);
        using var sub = Process.Start(new ProcessStartInfo(Gateway.MosquittoClientsTests.Tool("mosquitto_sub"))
        {
            ArgumentList = { "-h", "127.0.0.1", "-p", port, "-V", "mqttv311", "-q", "1", "-t", $"{root}/+/telemetry", "-C", (Publishers * PerPublisher).ToString(CultureInfo.InvariantCulture), "-W", "90", "-i", clientId },
            RedirectStandardOutput = true,
            UseShellExecute = false,
        })!;
        var output = sub.StandardOutput.ReadToEndAsync();
        await subscribed.WaitAsync(TimeSpan.FromSeconds(15));

        await PublishBurstAsync(root, MqttProtocolVersion.V311);

        await sub.WaitForExitAsync();
        var lines = (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(0, sub.ExitCode);   // 27 when -W ran out before every message came
        AssertEachPublisherInOrder(lines);
    }

    [Fact]
    public async Task SlowSubscriber_MakesItsPublishersWait_AndLosesNothing()
    {
        var topic = $"slow/{NewId("t")}";
        var held = new ConcurrentQueue<MqttApplicationMessageReceivedEventArgs>();
        var subscriber = node.NewClient();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;   // it reads, but does not acknowledge (yet): its window fills
            held.Enqueue(e);
            return Task.CompletedTask;
        };
        var subscriberId = NewId("slow");
        await subscriber.ConnectAsync(node.Options(subscriberId).Build());
        await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);

        var publisher = await node.ConnectAsync(NewId("pub"));
        var acknowledged = 0;
        var publishing = Task.Run(async () =>
        {
            for (var n = 1; n <= 300; n++)
            {
                await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(n.ToString(CultureInfo.InvariantCulture)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                Interlocked.Increment(ref acknowledged);
            }
        });

        // 100 in the subscriber's window, then 50 queued: the 150th publish fills the queue to its mark, and its
        // PUBACK waits for room.
        await Eventually.True(() => Task.FromResult(held.Count == 100 && Volatile.Read(ref acknowledged) == 149), "the window full and the publisher waiting");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(149, Volatile.Read(ref acknowledged));   // still waiting: back-pressure, not drops
        Assert.False(publishing.IsCompleted);
        var delivery = await DeliveryOfAsync(node.Http, subscriberId);   // what an operator sees meanwhile
        Assert.Equal((100, 100, 50, 0L, true), (delivery.Window, delivery.InFlight, delivery.Queued, delivery.Dropped, delivery.Congested));

        // The subscriber catches up: everything arrives, in order, and the publisher finishes.
        await AcknowledgeAllUntilAsync(held, 300);
        await publishing.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(1, 300).Select(n => n.ToString(CultureInfo.InvariantCulture)), held.Select(e => e.ApplicationMessage.ConvertPayloadToString()));
        var status = await Eventually.Get(() => node.GetThingAsync(subscriberId), s => s is { Usage.MessagesOut: 300 }, "the subscriber's counters");
        Assert.Equal(0, status!.Usage.MessagesDropped);
    }

    /// <summary>The connections API's view of delivery to a client's live connection.</summary>
    internal static async Task<ConnectionDelivery> DeliveryOfAsync(HttpClient http, string clientId)
    {
        var body = await http.GetFromJsonAsync<JsonObject>($"/api/connections/{clientId}");
        return body!["delivery"].Deserialize<ConnectionDelivery>(JsonSerializerOptions.Web)!;
    }

    internal static async Task AcknowledgeAllUntilAsync(ConcurrentQueue<MqttApplicationMessageReceivedEventArgs> held, int count)
    {
        var acknowledged = 0;
        await Eventually.True(async () =>
        {
            foreach (var e in held.Skip(acknowledged).ToList())
            {
                await e.AcknowledgeAsync(CancellationToken.None);
                acknowledged++;
            }

            return held.Count >= count;
        }, $"{count} messages", TimeSpan.FromSeconds(60));
    }

    /// <summary>Each publisher publishes its numbered messages with 20 QoS 1 publishes in flight, as the benchmark does.</summary>
    private async Task PublishBurstAsync(string root, MqttProtocolVersion version)
    {
        await Task.WhenAll(Enumerable.Range(0, Publishers).Select(async p =>
        {
            var publisher = await node.ConnectAsync(NewId($"pub{p}"), version);
            using var inFlight = new SemaphoreSlim(20);
            var publishes = new List<Task>();
            for (var n = 1; n <= PerPublisher; n++)
            {
                await inFlight.WaitAsync();
                var message = new MqttApplicationMessageBuilder().WithTopic($"{root}/{p}/telemetry").WithPayload($"{p}:{n}").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
                publishes.Add(publisher.PublishAsync(message).ContinueWith(t =>
                {
                    inFlight.Release();
                    Assert.Equal(MqttClientPublishReasonCode.Success, t.Result.ReasonCode);
                }, TaskScheduler.Default));
            }

            await Task.WhenAll(publishes);
        }));
    }

    /// <summary>Every message of every publisher, once, and each publisher's in the order it published them.</summary>
    private static void AssertEachPublisherInOrder(IEnumerable<string> received)
    {
        var byPublisher = received.Select(r => r.Trim().Split(':')).GroupBy(parts => parts[0], parts => int.Parse(parts[1], CultureInfo.InvariantCulture)).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(Publishers, byPublisher.Count);
        Assert.All(byPublisher.Values, numbers => Assert.Equal(Enumerable.Range(1, PerPublisher), numbers));
    }

    private async Task<Task> SubscribedEventAsync(string clientId)
    {
        var watcher = await node.ConnectAsync(NewId("watch"));
        var subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.ApplicationMessageReceivedAsync += _ =>
        {
            subscribed.TrySetResult();
            return Task.CompletedTask;
        };
        await watcher.SubscribeAsync($"$aws/events/subscriptions/subscribed/{clientId}", MqttQualityOfServiceLevel.AtMostOnce);
        return subscribed.Task;
    }
}

/// <summary>A subscriber that stops reading: its publishers are released after the wait limit, and its overflow is dropped, counted and logged.</summary>
public sealed class StalledSubscriberTests(StalledSubscriberNodeFixture node) : IClassFixture<StalledSubscriberNodeFixture>
{
    [Fact]
    public async Task StalledSubscriber_ReleasesItsPublishers_KeepsTheOldest_AndCountsWhatItDrops()
    {
        var topic = $"stalled/{NewId("t")}";
        var held = new ConcurrentQueue<MqttApplicationMessageReceivedEventArgs>();
        var subscriber = node.NewClient();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            e.AutoAcknowledge = false;
            held.Enqueue(e);
            return Task.CompletedTask;
        };
        var subscriberId = NewId("stalled");
        await subscriber.ConnectAsync(node.Options(subscriberId).Build());
        await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);

        // Every publish is acknowledged: the publisher waits 300 ms once, then no longer for this subscriber.
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, Enumerable.Range(1, 500));

        // 100 sent (its window), 200 queued (the queue's capacity), the newest 200 dropped: counted on its thing and logged.
        var status = await Eventually.Get(() => node.GetThingAsync(subscriberId), s => s is { Usage.MessagesDropped: 200 }, "the drops counted");
        Assert.Equal(200, status!.Usage.MessagesDropped);
        Assert.Contains(node.Logs.Entries, e => e.Message.Contains($"Dropped", StringComparison.Ordinal) && e.Message.Contains(subscriberId, StringComparison.Ordinal));
        var delivery = await DeliveryPolicyTests.DeliveryOfAsync(node.Http, subscriberId);   // and on its connection
        Assert.Equal((100, 200, 200L), (delivery.InFlight, delivery.Queued, delivery.Dropped));

        // It catches up: the 300 oldest, in order, none twice.
        await DeliveryPolicyTests.AcknowledgeAllUntilAsync(held, 300);
        await publisher.PublishNumberedAsync(topic, [501]);   // after everything before it, in order
        await Eventually.True(() => Task.FromResult(held.Count >= 301), "the next message");
        Assert.Equal([.. Enumerable.Range(1, 300), 501], held.Select(e => int.Parse(e.ApplicationMessage.ConvertPayloadToString(), CultureInfo.InvariantCulture)));
        await held.Last().AcknowledgeAsync(CancellationToken.None);
    }
}
