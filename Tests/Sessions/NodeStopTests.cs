using System.Collections.Concurrent;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Sessions;

/// <summary>
/// A planned stop (a rolling restart) of a node hosting persistent sessions, two in-process nodes on PostgreSQL:
/// nothing it acknowledged is lost when a session's grain is briefly unreachable during the stop, and what the other
/// node forwarded to it, which it handed on, is not replayed to the sessions again.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class NodeStopTests(PostgresServer postgres)
{
    /// <summary>
    /// Messages a node acknowledged for a persistent session that is offline there wait in the node's memory until the
    /// session's grain takes them. When that grain cannot be reached while the node stops, the node keeps trying until
    /// its drain ends instead of dropping them at the first failure.
    /// </summary>
    [Fact]
    public async Task SessionGrainUnreachableAsItsNodeStops_TheAcknowledgedMessagesStillReachTheSession()
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var subscriberId = $"sub-{id}";
        var topic = $"stopping/{id}";
        var fault = new SessionGrainFault(subscriberId, failuresWhileStopping: 3);
        var connectionString = await postgres.CreateDatabaseAsync();
        await using var survivor = new PostgresNode(connectionString, $"stop-{id}", null);
        await survivor.InitializeAsync();
        await using var stopping = new PostgresNode(connectionString, $"stop-{id}", fault);
        await stopping.InitializeAsync();
        fault.Stopping = stopping.App.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;

        // A persistent session offline on the node that will stop, listed there (the hand-over adopts by that list).
        using (var before = await ConnectPersistentAsync(stopping, subscriberId, new()))
        {
            await before.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"{topic}/#", MqttQualityOfServiceLevel.AtLeastOnce).Build());
            await before.DisconnectAsync();
        }

        var stoppingId = await NodeIdOfAsync(stopping);
        await Eventually.True(async () => ListsAll(await ListOfAsync(survivor, stoppingId), [subscriberId]), "the session listed by its node");

        // Its grain unreachable from that node: what a publisher there is acknowledged for waits in the node's memory.
        fault.Armed = true;
        var acknowledged = new List<string>();
        using (var publisher = await stopping.ConnectAsync($"pub-{id}"))
        {
            for (var n = 1; n <= 20; n++)
            {
                var payload = $"m{n}";
                var result = await publisher.PublishStringAsync($"{topic}/t", payload, MqttQualityOfServiceLevel.AtLeastOnce);
                Assert.True(result.IsSuccess, $"publish {n}: {result.ReasonCode}");
                acknowledged.Add(payload);
            }
        }

        await Eventually.True(() => Task.FromResult(fault.Failures > 0), "the node failing to hand the messages to the session's grain");

        // The node stops while the grain is still unreachable for its first attempts, then reachable again.
        await stopping.DisposeAsync();
        Assert.True(fault.FailuresWhileStopping >= 1, "no attempt failed while the node stopped: the test did not test the stop");

        var received = new ConcurrentDictionary<string, int>();
        using var resumed = await ConnectPersistentAsync(survivor, subscriberId, received);
        await Eventually.True(
            () => Task.FromResult(acknowledged.All(received.ContainsKey)),
            $"every acknowledged message delivered (missing: {string.Join(", ", acknowledged.Where(a => !received.ContainsKey(a)))})",
            TimeSpan.FromSeconds(30));
        Assert.DoesNotContain(stopping.Logs.Errors, e => e.Message.Contains("dropped", StringComparison.Ordinal));
    }

    /// <summary>
    /// A node keeps what it forwarded to another node for <c>ReplayWindow</c>, to replay it to that node's persistent
    /// sessions if it dies. A node that stops on purpose hands everything on first and says so (<c>Drained</c>), so
    /// the device does not get it all again.
    /// </summary>
    [Fact]
    public async Task WhatTheStoppingNodeHandedOn_IsNotReplayedByTheNodeThatForwardedIt()
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var subscriberId = $"sub-{id}";
        var topic = $"drained/{id}";
        var connectionString = await postgres.CreateDatabaseAsync();
        await using var survivor = new PostgresNode(connectionString, $"drain-{id}", null);
        survivor.Logs.CaptureInformation(RouterCategory);
        await survivor.InitializeAsync();
        await using var stopping = new PostgresNode(connectionString, $"drain-{id}", null);
        await stopping.InitializeAsync();
        var stoppingId = await NodeIdOfAsync(stopping);

        // A persistent subscriber on the node that will stop, receiving what a publisher on the other node sends: the
        // other node keeps each forwarded message to replay it should this node die.
        var received = new ConcurrentDictionary<string, int>();
        var subscriber = await ConnectPersistentAsync(stopping, subscriberId, received);
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"{topic}/#", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await Eventually.True(async () => ListsAll(await ListOfAsync(survivor, stoppingId), [subscriberId]), "the session listed by its node");
        var acknowledged = new List<string>();
        using (var publisher = await survivor.ConnectAsync($"pub-{id}"))
        {
            // Until the survivor has the subscriber's route a publish reaches nobody: probe (each payload once) until one arrives.
            var probes = 0;
            await Eventually.True(async () =>
            {
                await publisher.PublishStringAsync($"{topic}/probe", $"probe{++probes}", MqttQualityOfServiceLevel.AtLeastOnce);
                return received.Keys.Any(k => k.StartsWith("probe", StringComparison.Ordinal));
            }, "the subscriber's route on the survivor");
            for (var n = 1; n <= 30; n++)
            {
                var result = await publisher.PublishStringAsync($"{topic}/t", $"m{n}", MqttQualityOfServiceLevel.AtLeastOnce);
                Assert.True(result.IsSuccess, $"publish {n}: {result.ReasonCode}");
                acknowledged.Add($"m{n}");
            }

            await Eventually.True(() => Task.FromResult(acknowledged.All(received.ContainsKey)), "30 messages forwarded to the subscriber's node and delivered");
        }

        // The client counts a message before its PUBACK is on the wire. One its node still holds unacknowledged is
        // handed on with the session and rightly sent again (QoS 1 is at least once); this test is about the other
        // node's replay, so the stop waits for every PUBACK.
        await Eventually.True(async () => await Routing.DeliveryPolicyTests.DeliveryOfAsync(stopping.Http, subscriberId) is { InFlight: 0, Queued: 0 }, "the subscriber's PUBACKs at its node");

        // The planned stop; the device comes back through the survivor, which adopted its session.
        await stopping.DisposeAsync();
        subscriber.Dispose();
        using var resumed = await ConnectPersistentAsync(survivor, subscriberId, received);

        // The survivor notices the node gone (two refreshes) and replays what it may not have delivered: nothing, as the
        // stopped node said it handed all of it on. Before, all 30 came again.
        // Its replay ends two refreshes after the adoption; what it replayed went out in the rounds before that.
        await Eventually.True(() => Task.FromResult(survivor.Logs.Entries.Any(e => e.Message.Contains($"Replay for gone node {stoppingId} finished", StringComparison.Ordinal))), "the survivor's replay for the stopped node to end");
        var repeated = received.Where(r => r.Value > 1).Select(r => r.Key).Order().ToList();
        Assert.True(repeated.Count == 0, $"delivered again after the planned stop: {string.Join(", ", repeated)}");
        Assert.All(acknowledged, a => Assert.True(received.ContainsKey(a), a));

        // Why: the survivor dropped what it kept to replay, rather than a replay that missed the sessions.
        var told = survivor.Logs.Entries.Select(e => System.Text.RegularExpressions.Regex.Match(e.Message, $@"node {System.Text.RegularExpressions.Regex.Escape(stoppingId)} stopped and handed on what this node forwarded to it; (\d+) messages"))
            .FirstOrDefault(m => m.Success);
        Assert.True(told is not null, "the survivor was not told that the stopped node drained");
        Assert.True(int.Parse(told.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture) >= acknowledged.Count, told.Value);
    }

    /// <summary>
    /// A node that stops closes every connection at once. It used to record each end on its thing there and then: a
    /// thing activation and a state write per device during the stop, which made a graceful stop of 19,000 devices
    /// twice as long. It hands the ends to their keepers, and the things get them afterwards, whole.
    /// </summary>
    [Fact]
    public async Task APlannedStop_CallsNoThing_AndTheThingsGetTheirConnectionsAfterwards()
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var connectionString = await postgres.CreateDatabaseAsync();
        var calls = new ThingCallsWhileStopping();
        await using var survivor = new PostgresNode(connectionString, $"ends-{id}", null, "Iot:Things:KeptEndsDelay=00:00:01");
        await survivor.InitializeAsync();
        await using var stopping = new PostgresNode(connectionString, $"ends-{id}", calls, "Iot:Things:KeptEndsDelay=00:00:01");
        await stopping.InitializeAsync();
        calls.Stopping = stopping.App.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;

        // Clean-session devices on the node that will stop, each with some usage the node has not flushed to its thing.
        // Not the fixture's clients: it closes those before it stops the node, and the node must close these.
        var deviceIds = Enumerable.Range(1, 5).Select(n => $"end-{id}-{n}").ToList();
        var devices = new List<IMqttClient>();
        foreach (var (deviceId, n) in deviceIds.Select((d, i) => (d, i + 1)))
        {
            var device = new MqttClientFactory().CreateMqttClient();
            devices.Add(device);
            Assert.Equal(MqttClientConnectResultCode.Success, (await device.ConnectAsync(stopping.Options(deviceId).Build())).ResultCode);
            for (var m = 0; m < n; m++)
            {
                await device.PublishStringAsync($"ends/{deviceId}", "x", MqttQualityOfServiceLevel.AtLeastOnce);
            }
        }

        var open = await Eventually.Get(() => survivor.GetThingAsync(deviceIds[^1]), s => s is { Connectivity.Connected: true }, "the last device connected");
        await stopping.DisposeAsync();
        devices.ForEach(d => d.Dispose());

        Assert.True(calls.Disconnects == 0, $"the stopping node recorded {calls.Disconnects} ends on their things during its stop");
        foreach (var (deviceId, n) in deviceIds.Select((d, i) => (d, i + 1)))
        {
            // Waiting for the stopping node's own account: under load the survivor may have recorded the connection
            // as lost first (an adopter's guess, without usage), which that account corrects.
            var status = (await Eventually.Get(() => survivor.GetThingAsync(deviceId),
                s => s is { History.Count: > 0, Connectivity.DisconnectReason: DisconnectReasons.ServerInitiated } && s.Usage.MessagesIn == n,
                $"the end of {deviceId}'s connection on its thing, as its node recorded it"))!;
            Assert.False(status.Connectivity.Connected);
            Assert.Equal(DisconnectReasons.ServerInitiated, status.Connectivity.DisconnectReason);
            var past = Assert.Single(status.History!);
            Assert.Equal(DisconnectReasons.ServerInitiated, past.DisconnectReason);
            Assert.NotNull(past.ConnectedAt);
            Assert.Equal(n, status.Usage.MessagesIn);
        }

        Assert.Equal(open!.Connectivity.Since, (await survivor.GetThingAsync(deviceIds[^1]))!.History![0].ConnectedAt);
    }

    /// <summary>Counts a node's calls that record a connection's end on its thing, once the node is stopping.</summary>
    private sealed class ThingCallsWhileStopping : IOutgoingGrainCallFilter
    {
        private int _disconnects;

        public CancellationToken Stopping { get; set; } = CancellationToken.None;

        public int Disconnects => Volatile.Read(ref _disconnects);

        public Task Invoke(IOutgoingGrainCallContext context)
        {
            if (Stopping.IsCancellationRequested && context.InterfaceMethod?.DeclaringType == typeof(IThingGrain) && context.MethodName == nameof(IThingGrain.Disconnected))
            {
                Interlocked.Increment(ref _disconnects);
            }

            return context.Invoke();
        }
    }

    private const string RouterCategory = "OrleansIot.Gateway.Routing.ClusterRouter";

    /// <summary>
    /// The node that adopted a stopped node's sessions keeps the stopped node's list of them readable for a while: the
    /// other nodes replay by it what the stopped node may not have handed on (a drain that ended holding messages). It
    /// used to live on only in the memory of the list's grains after the adoption, and a grain whose activation was on
    /// the stopped node took its part of the list with it (each of eight sessions had even odds of vanishing).
    /// </summary>
    [Fact]
    public async Task AfterAHandOver_TheStoppedNodesListOfSessionsStaysReadable()
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        var connectionString = await postgres.CreateDatabaseAsync();
        await using var survivor = new PostgresNode(connectionString, $"list-{id}", null);
        await survivor.InitializeAsync();
        await using var stopping = new PostgresNode(connectionString, $"list-{id}", null);
        await stopping.InitializeAsync();
        var stoppingId = await NodeIdOfAsync(stopping);

        // Eight persistent sessions (in different shards of the list, most likely), offline on the node that will stop.
        var clientIds = Enumerable.Range(1, 8).Select(n => $"list-{id}-{n}").ToList();
        foreach (var clientId in clientIds)
        {
            using var device = await ConnectPersistentAsync(stopping, clientId, new());
            await device.DisconnectAsync();
        }

        await Eventually.True(async () => ListsAll(await ListOfAsync(survivor, stoppingId), clientIds), "the sessions listed by their node");

        await stopping.DisposeAsync();   // hands its sessions to the survivor before it goes

        var after = await ListOfAsync(survivor, stoppingId);
        Assert.All(clientIds, c => Assert.Contains($"\"{c}\"", after, StringComparison.Ordinal));
    }

    private static async Task<string> NodeIdOfAsync(NodeFixture node) =>
        System.Text.Json.JsonDocument.Parse(await node.Http.GetStringAsync("/health")).RootElement.GetProperty("nodeId").GetString()!;

    /// <summary>A node's list of the client ids it hosts (adoption and replay go by it), as another node reads it.</summary>
    private static Task<string> ListOfAsync(NodeFixture reader, string nodeId) =>
        reader.Http.GetStringAsync($"/api/nodes/{Uri.EscapeDataString(nodeId)}/clients");

    private static bool ListsAll(string list, IEnumerable<string> clientIds) =>
        clientIds.All(c => list.Contains($"\"{c}\"", StringComparison.Ordinal));

    private static async Task<IMqttClient> ConnectPersistentAsync(NodeFixture node, string clientId, ConcurrentDictionary<string, int> received)
    {
        var client = new MqttClientFactory().CreateMqttClient();
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.AddOrUpdate(e.ApplicationMessage.ConvertPayloadToString(), 1, (_, n) => n + 1);
            return Task.CompletedTask;
        };
        var result = await client.ConnectAsync(node.Options(clientId).WithCleanStart(false).WithSessionExpiryInterval(3600).Build());
        Assert.True(result.ResultCode == MqttClientConnectResultCode.Success, $"{clientId}: {result.ResultCode} {result.ReasonString}\n{string.Join('\n', node.Logs.Entries.TakeLast(10))}");
        return client;
    }

    /// <summary>A node of its own in PostgreSQL mode, in this process; with a fault, its calls to one session's grain can fail (or are watched).</summary>
    private sealed class PostgresNode(string connectionString, string clusterId, IOutgoingGrainCallFilter? fault, params string[] extra) : NodeFixture, IAsyncDisposable
    {
        private bool _disposed;

        protected override IEnumerable<string> Settings =>
        [
            "Iot:Storage=Postgres",
            $"ConnectionStrings:Iot={connectionString}",
            $"Orleans:ClusterId={clusterId}",
            "Iot:Auth:AllowAnonymous=true",   // PostgreSQL mode is closed by default
            "Iot:Routing:RefreshInterval=00:00:01",
            $"Logging:LogLevel:{RouterCategory}=Information",
            .. extra,
        ];

        protected override void Configure(WebApplicationBuilder builder)
        {
            if (fault is not null)
            {
                builder.Services.AddSingleton<IOutgoingGrainCallFilter>(fault);   // what AddOutgoingGrainCallFilter registers
            }
        }

        public new async Task DisposeAsync()
        {
            if (!_disposed)
            {
                _disposed = true;
                await base.DisposeAsync();
            }
        }

        async ValueTask IAsyncDisposable.DisposeAsync() => await DisposeAsync();
    }

    /// <summary>
    /// Fails this node's calls that hand messages to one session's grain while armed; once the node stops, only its
    /// first <c>failuresWhileStopping</c> attempts fail (a grain whose silo is busy or moving for a moment).
    /// </summary>
    private sealed class SessionGrainFault(string clientId, int failuresWhileStopping) : IOutgoingGrainCallFilter
    {
        private int _failures;
        private int _attemptsWhileStopping;

        public volatile bool Armed;

        public CancellationToken Stopping { get; set; } = CancellationToken.None;

        public int Failures => Volatile.Read(ref _failures);

        public int FailuresWhileStopping => Math.Min(Volatile.Read(ref _attemptsWhileStopping), failuresWhileStopping);

        public Task Invoke(IOutgoingGrainCallContext context)
        {
            if (Armed
                && context.InterfaceMethod?.DeclaringType == typeof(IClientSessionGrain)
                && context.MethodName is nameof(IClientSessionGrain.Enqueue) or nameof(IClientSessionGrain.Replay)
                && context.TargetId.Key.ToString() == clientId
                && (!Stopping.IsCancellationRequested || Interlocked.Increment(ref _attemptsWhileStopping) <= failuresWhileStopping))
            {
                Interlocked.Increment(ref _failures);
                throw new TimeoutException($"test fault: {context.MethodName} on the session grain of {clientId}");
            }

            return context.Invoke();
        }
    }
}
