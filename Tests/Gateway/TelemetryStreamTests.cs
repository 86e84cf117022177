using System.Collections.Concurrent;
using MQTTnet;
using MQTTnet.Protocol;
using Orleans.Streams;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Telemetry;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Gateway;

[Collection(NodeCollection.Name)]
public sealed class TelemetryStreamTests(NodeFixture node)
{
    /// <summary>A rule selecting <paramref name="filter"/> (its action republishes to a topic nobody reads).</summary>
    private async Task<string> RuleAsync(string filter)
    {
        var name = "ts_" + Guid.NewGuid().ToString("N")[..10];
        await Rules.RuleActionsTests.CreateRuleAsync(node.Http, name, $"SELECT * FROM '{filter}'",
            [Rules.RuleActionsTests.Action("republish", new System.Text.Json.Nodes.JsonObject { ["topic"] = $"unread/{name}" })]);
        return name;
    }

    [Fact]
    public async Task Publishes_ARuleSelects_FanOutOnTheTelemetryStream_InPublishOrderPerDevice()
    {
        var root = "tel-" + Guid.NewGuid().ToString("N")[..8];
        // Published as soon as the API answered: the node reads a rule changed through its API before it answers.
        var rule = await RuleAsync($"{root}/+/telemetry");
        var seen = new ConcurrentQueue<TelemetryMessage>();
        var partitions = new ConcurrentBag<int>();
        var handles = new List<StreamSubscriptionHandle<TelemetryBatch>>();
        var provider = node.Cluster.GetStreamProvider(StreamNames.Provider);
        for (var p = 0; p < TelemetryPartitions.DefaultCount; p++)
        {
            var stream = provider.GetStream<TelemetryBatch>(StreamNames.Telemetry, TelemetryPartitions.StreamKey(p));
            handles.Add(await stream.SubscribeAsync((batch, _) =>
            {
                partitions.Add(batch.Partition);
                foreach (var message in batch.Messages.Where(m => m.Topic.StartsWith(root, StringComparison.Ordinal)))
                {
                    seen.Enqueue(message);
                }

                return Task.CompletedTask;
            }));
        }

        try
        {
            const int PerDevice = 25;
            var devices = Enumerable.Range(0, 4).Select(i => $"{root}-dev{i}").ToList();
            await Task.WhenAll(devices.Select(async id =>
            {
                var client = await node.ConnectAsync(id);
                for (var n = 0; n < PerDevice; n++)
                {
                    var qos = n % 2 == 0 ? MqttQualityOfServiceLevel.AtLeastOnce : MqttQualityOfServiceLevel.AtMostOnce;
                    await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{root}/{id}/telemetry").WithPayload($"{n}").WithQualityOfServiceLevel(qos).Build());
                }
            }));

            await Eventually.True(() => Task.FromResult(seen.Count >= devices.Count * PerDevice), "every publish on the stream");
            Assert.Equal(devices.Count * PerDevice, seen.Count);
            foreach (var id in devices)
            {
                var mine = seen.Where(m => m.ClientId == id).ToList();
                Assert.Equal(Enumerable.Range(0, PerDevice).Select(n => n.ToString(System.Globalization.CultureInfo.InvariantCulture)), mine.Select(m => System.Text.Encoding.UTF8.GetString(m.Payload)));
                Assert.All(mine, m => Assert.Equal($"{root}/{id}/telemetry", m.Topic));
                Assert.Single(mine.Select(m => m.Node).Distinct());
            }

            // Each device's messages came on its own partition's stream.
            Assert.All(seen, m => Assert.Contains(TelemetryPartitions.For(m.ClientId, TelemetryPartitions.DefaultCount), partitions));
        }
        finally
        {
            foreach (var handle in handles)
            {
                await handle.UnsubscribeAsync();
            }

            await node.Http.DeleteAsync($"/api/rules/{rule}");
        }
    }

    /// <summary>
    /// The rules are the stream's only reader: a message no enabled rule selects does not go on it (it is still
    /// delivered to subscribers), and neither does one whose rule was disabled or deleted.
    /// </summary>
    [Fact]
    public async Task Publishes_NoEnabledRuleSelects_StayOffTheTelemetryStream()
    {
        var root = "off-" + Guid.NewGuid().ToString("N")[..8];
        var deviceId = $"{root}-dev";
        var seen = new ConcurrentQueue<TelemetryMessage>();
        var stream = node.Cluster.GetStreamProvider(StreamNames.Provider).GetStream<TelemetryBatch>(StreamNames.Telemetry,
            TelemetryPartitions.StreamKey(TelemetryPartitions.For(deviceId, TelemetryPartitions.DefaultCount)));
        var handle = await stream.SubscribeAsync((batch, _) =>
        {
            foreach (var m in batch.Messages.Where(m => m.ClientId == deviceId))
            {
                seen.Enqueue(m);
            }

            return Task.CompletedTask;
        });
        var selected = await RuleAsync($"{root}/selected/#");
        var (reader, inbox, _) = await Sessions.SessionClients.ConnectAsync(node, node.Options($"{root}-reader"));
        await reader.SubscribeAsync($"{root}/#", MqttQualityOfServiceLevel.AtLeastOnce);
        try
        {
            var client = await node.ConnectAsync(deviceId);
            async Task PublishAsync(string topic) =>
                await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("m").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

            await PublishAsync($"{root}/other/1");
            await PublishAsync($"{root}/selected/1");
            await Eventually.True(() => Task.FromResult(seen.Any(m => m.Topic == $"{root}/selected/1")), "the selected message");

            var disabled = await RuleAsync($"{root}/disabled/#");
            Assert.True((await node.Http.PostAsync($"/api/rules/{disabled}/disable", null)).IsSuccessStatusCode);
            await PublishAsync($"{root}/disabled/1");
            Assert.True((await node.Http.DeleteAsync($"/api/rules/{selected}")).IsSuccessStatusCode);
            await PublishAsync($"{root}/selected/2");
            var marker = await RuleAsync($"{root}/marker");
            await PublishAsync($"{root}/marker");

            // The marker was published last on the same partition: once it is seen, the others would have been.
            await Eventually.True(() => Task.FromResult(seen.Any(m => m.Topic == $"{root}/marker")), "the marker");
            Assert.Equal([$"{root}/selected/1", $"{root}/marker"], seen.Select(m => m.Topic));
            await node.Http.DeleteAsync($"/api/rules/{disabled}");
            await node.Http.DeleteAsync($"/api/rules/{marker}");

            // Every one of them reached the subscriber.
            Assert.Equal(5, (await inbox.WaitAsync($"{root}/", 5, "all five at the subscriber")).Count);
        }
        finally
        {
            await handle.UnsubscribeAsync();
        }
    }

    [Fact]
    public async Task PlatformTopics_DoNotEnterTheTelemetryStream()
    {
        var root = "plat-" + Guid.NewGuid().ToString("N")[..8];
        var seen = new ConcurrentQueue<TelemetryMessage>();
        var deviceId = $"{root}-dev";
        var partition = TelemetryPartitions.For(deviceId, TelemetryPartitions.DefaultCount);
        var stream = node.Cluster.GetStreamProvider(StreamNames.Provider).GetStream<TelemetryBatch>(StreamNames.Telemetry, TelemetryPartitions.StreamKey(partition));
        var handle = await stream.SubscribeAsync((batch, _) =>
        {
            foreach (var m in batch.Messages.Where(m => m.ClientId == deviceId))
            {
                seen.Enqueue(m);
            }

            return Task.CompletedTask;
        });
        // A wildcard in the first level does not select the platform's topics (MQTT's rule for '$' topics).
        var wildcard = await RuleAsync($"+/things/{deviceId}/shadow/get");
        var marker = await RuleAsync($"{root}/marker");
        try
        {
            var client = await node.ConnectAsync(deviceId);
            await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"$aws/things/{deviceId}/shadow/get").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{root}/marker").WithPayload("m").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

            // The marker was published after the '$' message on the same partition: once it is seen, the '$'
            // message would have been seen too.
            await Eventually.True(() => Task.FromResult(seen.Any(m => m.Topic == $"{root}/marker")), "the marker");
            Assert.DoesNotContain(seen, m => m.Topic.StartsWith('$'));
        }
        finally
        {
            await handle.UnsubscribeAsync();
            await node.Http.DeleteAsync($"/api/rules/{wildcard}");
            await node.Http.DeleteAsync($"/api/rules/{marker}");
        }
    }
}
