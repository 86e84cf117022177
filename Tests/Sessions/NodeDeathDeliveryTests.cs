using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Sessions;

/// <summary>
/// The delivery guarantee across the death of a node (kill -9 of a separate silo process, PostgreSQL mode, the cluster's
/// default membership settings): every QoS 1 message a publisher had acknowledged reaches a persistent-session
/// subscriber at least once, and the subscriber gets back in on the surviving node within 10 s. Publishers publish
/// throughout, before, during and after the death.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class NodeDeathDeliveryTests(PostgresServer postgres)
{
    private const int Publishers = 4;
    private static readonly TimeSpan PublishEvery = TimeSpan.FromMilliseconds(200);   // 20 msg/s in all
    private static readonly TimeSpan Reconnect = TimeSpan.FromSeconds(10);

    private static Dictionary<string, string> Settings(string connectionString, string clusterId) => new()
    {
        ["Iot__Storage"] = "Postgres",
        ["ConnectionStrings__Iot"] = connectionString,
        ["Orleans__ClusterId"] = clusterId,
        ["Iot__Routing__RefreshInterval"] = "00:00:01",
        ["Iot__Sessions__HostListFlushInterval"] = "00:00:00.100",
    };

    [Fact]
    public async Task KillDashNineOfTheSubscribersNode_NoAcknowledgedMessageLost_ReconnectWithin10s()
    {
        await using var nodes = await TwoNodes.StartAsync(postgres, "deliver");
        var (survivor, doomed) = (nodes.Survivor, nodes.Other);
        var id = Guid.NewGuid().ToString("N")[..8];
        var topic = $"death/{id}";
        var subscriberId = $"sub-{id}";

        var received = new ConcurrentDictionary<string, int>();
        var subscriber = await ConnectSubscriberAsync(doomed, subscriberId, received);
        await SubscribeAsync(subscriber, topic);
        await ListedAsync(survivor, doomed, subscriberId);

        await using var load = await PublishLoad.StartAsync(survivor, topic, id);
        await Eventually.True(() => Task.FromResult(received.Count >= 20), "messages flowing through the doomed node");

        var sinceKill = Stopwatch.StartNew();
        doomed.Kill();
        subscriber.Dispose();

        // The device comes back after 3 s (a device notices a dead connection late: keep-alive), so what was published
        // meanwhile had only the dead node's routes to go by; then it reconnects as soon as the survivor lets it in.
        await Task.Delay(TimeSpan.FromSeconds(3));
        IMqttClient? resumed = null;
        while (resumed is null)
        {
            resumed = await TryConnectSubscriberAsync(survivor, subscriberId, received);
            if (resumed is null)
            {
                Assert.True(sinceKill.Elapsed < TimeSpan.FromSeconds(60), "the survivor never let the device back in");
                await Task.Delay(250);
            }
        }

        var reconnectedAfter = sinceKill.Elapsed;
        using (resumed)
        {
            // Publish on for a while after the reconnect, then stop and compare.
            var after = load.Acknowledged.Count;
            await Eventually.True(() => Task.FromResult(load.Acknowledged.Count >= after + 40), "publishing after the reconnect");
            await load.StopAsync();

            var acknowledged = load.Acknowledged.Keys.ToList();
            try
            {
                await Eventually.True(
                    () => Task.FromResult(acknowledged.All(received.ContainsKey)),
                    $"every acknowledged message delivered (missing: {string.Join(", ", acknowledged.Where(a => !received.ContainsKey(a)).Take(20))})",
                    TimeSpan.FromSeconds(90));
            }
            catch (TimeoutException ex)
            {
                // What the survivor did about the dead node, for whoever reads the failure.
                var said = survivor.Output.Split('\n').Where(l => l.Contains("gone", StringComparison.OrdinalIgnoreCase)
                    || l.Contains("replay", StringComparison.OrdinalIgnoreCase) || l.Contains("drop", StringComparison.OrdinalIgnoreCase)
                    || l.Contains(subscriberId, StringComparison.Ordinal));
                throw new TimeoutException($"{ex.Message}\nsurvivor said:\n{string.Join('\n', said.TakeLast(40))}", ex);
            }
            var duplicates = received.Values.Sum(n => n - 1);
            Console.WriteLine($"node death: reconnected after {reconnectedAfter.TotalSeconds:0.0} s; {acknowledged.Count} acknowledged, all delivered, {duplicates} delivered more than once");
            Assert.True(reconnectedAfter <= Reconnect, $"the device got back in after {reconnectedAfter.TotalSeconds:0.0} s (at most {Reconnect.TotalSeconds} s)");
        }
    }

    [Fact]
    public async Task KillDashNineOfThePublishersNode_NoAcknowledgedMessageLost()
    {
        await using var nodes = await TwoNodes.StartAsync(postgres, "deliver");
        var (survivor, doomed) = (nodes.Survivor, nodes.Other);
        var id = Guid.NewGuid().ToString("N")[..8];
        var topic = $"death/{id}";

        var received = new ConcurrentDictionary<string, int>();
        using var subscriber = await ConnectSubscriberAsync(survivor, $"sub-{id}", received);
        await SubscribeAsync(subscriber, topic);

        // The publishers are on the doomed node; when it dies they reconnect to the survivor and go on.
        await using var load = await PublishLoad.StartAsync(doomed, topic, id, fallback: survivor);
        await Eventually.True(() => Task.FromResult(received.Count >= 20), "messages flowing from the doomed node");
        doomed.Kill();
        var atKill = load.Acknowledged.Count;
        await Eventually.True(() => Task.FromResult(load.Acknowledged.Count >= atKill + 40), "the publishers going on through the survivor", TimeSpan.FromSeconds(60));
        await load.StopAsync();

        var acknowledged = load.Acknowledged.Keys.ToList();
        await Eventually.True(
            () => Task.FromResult(acknowledged.All(received.ContainsKey)),
            $"every acknowledged message delivered (missing: {string.Join(", ", acknowledged.Where(a => !received.ContainsKey(a)).Take(20))})",
            TimeSpan.FromSeconds(60));
    }

    /// <summary>
    /// A planned stop (SIGTERM: a rolling restart, a scale-in) of the node hosting a persistent-session subscriber, while
    /// publishers on the other node go on: the device either comes straight back through the other node (a load
    /// balancer sends it there at once) or sleeps through the stop and comes back later. Either way every message
    /// acknowledged to a publisher reaches it: the stopping node hands its offline sessions to the survivor before it
    /// says goodbye, and what reaches it meanwhile goes to wherever each session lives now. <paramref name="cameFromSurvivor"/>:
    /// the session lived on the survivor a moment before (a rolling restart moves devices back and forth), so the
    /// survivor still remembers it as moved away when it is handed the session back.
    /// </summary>
    [Theory]
    [InlineData(0, false)]
    [InlineData(4, false)]
    [InlineData(4, true)]
    public async Task PlannedStopOfTheSubscribersNode_NoAcknowledgedMessageLost(int asleepSeconds, bool cameFromSurvivor)
    {
        await using var nodes = await TwoNodes.StartAsync(postgres, "planned");
        var (survivor, stopping) = (nodes.Survivor, nodes.Other);
        var id = Guid.NewGuid().ToString("N")[..8];
        var topic = $"planned/{id}";
        var subscriberId = $"sub-{id}";

        var received = new ConcurrentDictionary<string, int>();
        if (cameFromSurvivor)
        {
            using var before = await ConnectSubscriberAsync(survivor, subscriberId, received);
            await SubscribeAsync(before, topic);
            await before.DisconnectAsync();
        }

        var subscriber = await ConnectSubscriberAsync(stopping, subscriberId, received);
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        subscriber.DisconnectedAsync += _ =>
        {
            closed.TrySetResult();
            return Task.CompletedTask;
        };
        await SubscribeAsync(subscriber, topic);
        await ListedAsync(survivor, stopping, subscriberId);

        await using var load = await PublishLoad.StartAsync(survivor, topic, id, publishers: 8);
        await Eventually.True(() => Task.FromResult(received.Count >= 40), "messages flowing through the stopping node");

        stopping.Terminate();
        await closed.Task.WaitAsync(TimeSpan.FromSeconds(20));
        subscriber.Dispose();
        if (asleepSeconds > 0)
        {
            Assert.Equal(0, await stopping.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            await Task.Delay(TimeSpan.FromSeconds(asleepSeconds));   // published meanwhile: only the handed-over session can take it
        }

        IMqttClient? resumed = null;
        var since = Stopwatch.StartNew();
        while ((resumed = await TryConnectSubscriberAsync(survivor, subscriberId, received)) is null)
        {
            Assert.True(since.Elapsed < TimeSpan.FromSeconds(30), "the survivor never let the device back in");
            await Task.Delay(100);
        }

        using (resumed)
        {
            var after = load.Acknowledged.Count;
            await Eventually.True(() => Task.FromResult(load.Acknowledged.Count >= after + 80), "publishing after the reconnect");
            await load.StopAsync();
            var acknowledged = load.Acknowledged.Keys.ToList();
            try
            {
                await Eventually.True(() => Task.FromResult(acknowledged.All(received.ContainsKey)), "every acknowledged message delivered", TimeSpan.FromSeconds(30));
            }
            catch (TimeoutException ex)
            {
                var missing = acknowledged.Where(a => !received.ContainsKey(a)).Order().Take(20);
                throw new TimeoutException($"{ex.Message}; missing: {string.Join(", ", missing)}\nstopping node said:\n{string.Join('\n', stopping.Output.Split('\n').TakeLast(40))}\nsurvivor said:\n{string.Join('\n', survivor.Output.Split('\n').TakeLast(40))}", ex);
            }

            Assert.Equal(0, await stopping.WaitForExitAsync(TimeSpan.FromSeconds(20)));
            var duplicates = received.Values.Sum(n => n - 1);
            Console.WriteLine($"planned stop: {acknowledged.Count} acknowledged, all delivered, {duplicates} delivered more than once");
        }
    }

    /// <summary>Two nodes of one cluster on a database of their own: the survivor, started first, and the other one.</summary>
    private sealed record TwoNodes(SiloProcess Survivor, SiloProcess Other) : IAsyncDisposable
    {
        public static async Task<TwoNodes> StartAsync(PostgresServer postgres, string prefix)
        {
            var settings = Settings(await postgres.CreateDatabaseAsync(), $"{prefix}-{Guid.NewGuid().ToString("N")[..8]}");
            var survivor = SiloProcess.Start(settings);
            SiloProcess? other = null;
            try
            {
                await survivor.WaitUntilReadyAsync();
                other = SiloProcess.Start(settings);
                await other.WaitUntilReadyAsync();
                return new TwoNodes(survivor, other);
            }
            catch
            {
                if (other is not null)
                {
                    await other.DisposeAsync();
                }

                await survivor.DisposeAsync();
                throw;
            }
        }

        public async ValueTask DisposeAsync()
        {
            await Other.DisposeAsync();
            await Survivor.DisposeAsync();
        }
    }

    private static async Task SubscribeAsync(IMqttClient subscriber, string topic) =>
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"{topic}/#", MqttQualityOfServiceLevel.AtLeastOnce).Build());

    private static MqttClientOptionsBuilder Options(SiloProcess node, string clientId) => new MqttClientOptionsBuilder()
        .WithTcpServer("127.0.0.1", node.MqttPort)
        .WithClientId(clientId)
        .WithProtocolVersion(MQTTnet.Formatter.MqttProtocolVersion.V500)
        .WithTimeout(TimeSpan.FromSeconds(5));

    private static async Task<IMqttClient> ConnectSubscriberAsync(SiloProcess node, string clientId, ConcurrentDictionary<string, int> received) =>
        await TryConnectSubscriberAsync(node, clientId, received) ?? throw new InvalidOperationException($"{clientId} could not connect");

    /// <summary>A persistent session (clean start 0, expiry 1 h) counting every message it receives.</summary>
    private static async Task<IMqttClient?> TryConnectSubscriberAsync(SiloProcess node, string clientId, ConcurrentDictionary<string, int> received)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.AddOrUpdate(e.ApplicationMessage.ConvertPayloadToString(), 1, (_, n) => n + 1);
            return Task.CompletedTask;
        };
        try
        {
            var result = await client.ConnectAsync(Options(node, clientId).WithCleanStart(false).WithSessionExpiryInterval(3600).Build());
            if (result.ResultCode == MqttClientConnectResultCode.Success)
            {
                return client;
            }
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
        }

        client.Dispose();
        return null;
    }

    /// <summary>The doomed node lists the client (adoption and replay go by that list).</summary>
    private static async Task ListedAsync(SiloProcess survivor, SiloProcess doomed, string clientId)
    {
        var doomedId = System.Text.Json.JsonDocument.Parse(await doomed.Http.GetStringAsync("/health")).RootElement.GetProperty("nodeId").GetString();
        await Eventually.True(async () => (await survivor.Http.GetStringAsync($"/api/nodes/{Uri.EscapeDataString(doomedId!)}/clients")).Contains($"\"{clientId}\"", StringComparison.Ordinal), "the client listed by its node");
    }

    /// <summary>
    /// Publishers publishing numbered QoS 1 messages, one at a time each; a publish counts as acknowledged when its
    /// PUBACK said success. A publisher whose node dies reconnects to <c>fallback</c> and publishes the same number again.
    /// </summary>
    private sealed class PublishLoad : IAsyncDisposable
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _loops = [];

        public ConcurrentDictionary<string, bool> Acknowledged { get; } = new();

        public static async Task<PublishLoad> StartAsync(SiloProcess node, string topic, string id, SiloProcess? fallback = null, int publishers = Publishers)
        {
            var load = new PublishLoad();
            for (var p = 0; p < publishers; p++)
            {
                var clientId = $"pub-{id}-{p}";
                var client = new MqttClientFactory().CreateMqttClient();
                await client.ConnectAsync(Options(node, clientId).Build());
                var publisher = p;
                load._loops.Add(Task.Run(() => load.PublishAsync(client, clientId, $"{topic}/{publisher}", publisher, fallback)));
            }

            return load;
        }

        public async Task StopAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_loops);
        }

        public async ValueTask DisposeAsync()
        {
            if (!_stop.IsCancellationRequested)
            {
                await StopAsync();
            }

            _stop.Dispose();
        }

        private async Task PublishAsync(IMqttClient client, string clientId, string topic, int publisher, SiloProcess? fallback)
        {
            try
            {
                for (var n = 1; !_stop.IsCancellationRequested;)
                {
                    var payload = $"{publisher}:{n.ToString(CultureInfo.InvariantCulture)}";
                    try
                    {
                        var result = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
                        if (result.IsSuccess)
                        {
                            Acknowledged[payload] = true;
                            n++;
                        }

                        await Task.Delay(PublishEvery, _stop.Token);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException && fallback is not null)
                    {
                        // Its node died: not acknowledged, so the same message is published again through the survivor.
                        client.Dispose();
                        client = new MqttClientFactory().CreateMqttClient();
                        while (!client.IsConnected && !_stop.IsCancellationRequested)
                        {
                            try
                            {
                                await client.ConnectAsync(Options(fallback, clientId).Build());
                            }
                            catch (Exception retry) when (retry is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
                            {
                                // Until the survivor declares the node dead (seconds on a loaded machine), a connect
                                // whose grains were placed through the dead node waits, and the client times out.
                                // Stopping meanwhile just ends the loop: this message was never acknowledged.
                                if (!_stop.IsCancellationRequested)
                                {
                                    await Task.Delay(250);
                                }
                            }
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
            }
            finally
            {
                client.Dispose();
            }
        }
    }
}
