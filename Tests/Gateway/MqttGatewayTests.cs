using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Gateway;

[Collection(NodeCollection.Name)]
public sealed class MqttGatewayTests(NodeFixture node)
{
    private static async Task<ConcurrentQueue<MqttApplicationMessage>> SubscribeAsync(IMqttClient client, string filter, MqttQualityOfServiceLevel qos)
    {
        var received = new ConcurrentQueue<MqttApplicationMessage>();
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        var result = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, qos).Build());
        Assert.All(result.Items, i => Assert.True((int)i.ResultCode <= 2, $"subscribe failed: {i.ResultCode}"));
        return received;
    }

    [Theory]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V311, MqttQualityOfServiceLevel.AtLeastOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtMostOnce)]
    [InlineData(MqttProtocolVersion.V500, MqttQualityOfServiceLevel.AtLeastOnce)]
    public async Task Publish_ReachesWildcardSubscriber(MqttProtocolVersion version, MqttQualityOfServiceLevel qos)
    {
        var root = NewId("t");
        var subscriber = await node.ConnectAsync(NewId("sub"), version);
        var received = await SubscribeAsync(subscriber, $"{root}/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await node.ConnectAsync(NewId("pub"), version);

        var result = await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{root}/a/b").WithPayload("hi").WithQualityOfServiceLevel(qos).Build());

        Assert.True(result.IsSuccess, $"publish failed: {result.ReasonCode}");
        var message = await Eventually.Get(() => Task.FromResult(received.TryPeek(out var m) ? m : null), m => m is not null, "the message at the subscriber");
        Assert.Equal($"{root}/a/b", message!.Topic);
        Assert.Equal("hi", message.ConvertPayloadToString());
        Assert.Equal(qos, message.QualityOfServiceLevel);   // min(publish QoS, subscription QoS)
    }

    [Fact]
    public async Task Publish_OverWebSockets_ReachesTcpSubscriber()
    {
        var root = NewId("ws");
        var subscriber = await node.ConnectAsync(NewId("sub"));
        var received = await SubscribeAsync(subscriber, $"{root}/+", MqttQualityOfServiceLevel.AtLeastOnce);
        var wsClient = node.NewClient();
        var options = new MqttClientOptionsBuilder()
            .WithWebSocketServer(o => o.WithUri($"ws://127.0.0.1:{node.HttpPort}/mqtt"))
            .WithClientId(NewId("wsdev"))
            .WithProtocolVersion(MqttProtocolVersion.V500)
            .Build();
        Assert.Equal(MqttClientConnectResultCode.Success, (await wsClient.ConnectAsync(options)).ResultCode);

        await wsClient.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{root}/x").WithPayload("over-ws").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

        var message = await Eventually.Get(() => Task.FromResult(received.TryPeek(out var m) ? m : null), m => m is not null, "the message at the subscriber");
        Assert.Equal("over-ws", message!.ConvertPayloadToString());
    }

    [Fact]
    public async Task Connecting_TheApiShowsTheThingConnectedWithCounters()
    {
        var started = DateTime.UtcNow;
        var root = NewId("c");
        var deviceId = NewId("dev");
        var device = await node.ConnectAsync(deviceId);
        var subscriber = await node.ConnectAsync(NewId("sub"));
        await SubscribeAsync(subscriber, $"{root}/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await SubscribeAsync(device, $"{root}/cmd", MqttQualityOfServiceLevel.AtLeastOnce);

        for (var i = 0; i < 3; i++)
        {
            await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{root}/telemetry").WithPayload("12345").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        await subscriber.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{root}/cmd").WithPayload("go").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());

        var status = await Eventually.Get(() => node.GetThingAsync(deviceId), s => s is { Usage.MessagesIn: 3, Usage.MessagesOut: 1 }, "the device's counters");
        Assert.True(status!.Connectivity.Connected);
        Assert.Equal(5, status.Connectivity.ProtocolVersion);
        Assert.Equal(15, status.Usage.BytesIn);
        Assert.Equal(2, status.Usage.BytesOut);
        Assert.StartsWith("127.0.0.1:", status.Connectivity.RemoteAddress);
        node.AssertNoErrorsLogged(started);
    }

    [Fact]
    public async Task AnIdleDevice_CostsNoThingActivation_AndItsStatusAndHistoryAreWhole()
    {
        // A fleet is mostly idle devices: connecting one activates nothing for it but its connection directory entry
        // (issue 20). Its status still shows the open connection, and its end is recorded with its start.
        var deviceId = NewId("idle");
        var device = await node.ConnectAsync(deviceId, MqttProtocolVersion.V311);
        await device.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"cmd/{deviceId}").Build());
        await device.PingAsync();

        var management = node.Cluster.GetGrain<Orleans.Runtime.IManagementGrain>(0);
        var activations = await management.GetDetailedGrainStatistics();
        Assert.DoesNotContain(activations, a => a.GrainId.Type.ToString() == "thing" && a.GrainId.Key.ToString() == deviceId);

        var open = (await node.GetThingAsync(deviceId))!;
        Assert.True(open.Connectivity.Connected);
        Assert.Equal(4, open.Connectivity.ProtocolVersion);
        Assert.StartsWith("127.0.0.1:", open.Connectivity.RemoteAddress);
        Assert.False(string.IsNullOrEmpty(open.Connectivity.Node));
        Assert.DoesNotContain("/", open.Connectivity.Node);   // the node's name, not its routing id
        Assert.Equal(open.Connectivity.Since, open.FirstSeenAt);

        await device.DisconnectAsync();

        var ended = await Eventually.Get(() => node.GetThingAsync(deviceId), s => s is { Connectivity.Connected: false }, "the disconnect");
        var past = Assert.Single(ended!.History!);
        Assert.Equal(new PastConnection(open.Connectivity.SessionId, open.Connectivity.Since, ended.Connectivity.LastDisconnectAt, DisconnectReasons.ClientInitiated, open.Connectivity.Node, open.Connectivity.RemoteAddress, 4), past);
        Assert.Equal(open.FirstSeenAt, ended.FirstSeenAt);
    }

    [Fact]
    public async Task CleanDisconnect_IsRecordedAsClientInitiated()
    {
        var deviceId = NewId("dev");
        var device = await node.ConnectAsync(deviceId);
        await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{deviceId}/t").WithPayload("x").Build());

        await device.DisconnectAsync();

        var status = await Eventually.Get(() => node.GetThingAsync(deviceId), s => s is { Connectivity.Connected: false }, "the disconnect");
        Assert.Equal(DisconnectReasons.ClientInitiated, status!.Connectivity.DisconnectReason);
        Assert.Equal(1, status.Usage.MessagesIn);   // the final usage travels with the disconnect
    }

    [Fact]
    public async Task DroppedConnection_IsRecordedAsConnectionLost()
    {
        var deviceId = NewId("dev");
        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, node.MqttPort);
        var stream = socket.GetStream();
        await stream.WriteAsync(ConnectPacket311(deviceId));
        var connack = new byte[4];
        await stream.ReadExactlyAsync(connack);
        Assert.Equal(new byte[] { 0x20, 0x02, 0x00, 0x00 }, connack);
        await Eventually.Get(() => node.GetThingAsync(deviceId), s => s is { Connectivity.Connected: true }, "the connect");

        socket.Client.Close(0);   // no DISCONNECT packet

        var status = await Eventually.Get(() => node.GetThingAsync(deviceId), s => s is { Connectivity.Connected: false }, "the lost connection");
        Assert.Equal(DisconnectReasons.ConnectionLost, status!.Connectivity.DisconnectReason);
    }

    [Fact]
    public async Task SecondConnectionWithSameClientId_TakesOver()
    {
        var deviceId = NewId("dev");
        var first = await node.ConnectAsync(deviceId);
        var firstStatus = await Eventually.Get(() => node.GetThingAsync(deviceId), s => s is { Connectivity.Connected: true }, "the first connect");

        var second = await node.ConnectAsync(deviceId);

        await Eventually.True(() => Task.FromResult(!first.IsConnected), "the first connection to be closed");
        var status = await Eventually.Get(() => node.GetThingAsync(deviceId), s => s?.Connectivity.SessionId != firstStatus!.Connectivity.SessionId, "the new session");
        Assert.True(status!.Connectivity.Connected);
        Assert.True(second.IsConnected);
    }

    [Fact]
    public async Task EmptyClientId_Mqtt5_GetsAnAssignedId_AndAThing()
    {
        var client = node.NewClient();
        var result = await client.ConnectAsync(node.Options("").WithCleanStart().Build());

        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        Assert.StartsWith("auto-", result.AssignedClientIdentifier, StringComparison.Ordinal);
        await Eventually.Get(() => node.GetThingAsync(result.AssignedClientIdentifier), s => s is { Connectivity.Connected: true }, "the assigned client's thing");

        // Its access (development, here) was found under the assigned id: it may publish and receive.
        var topic = $"assigned/{Guid.NewGuid():N}";
        var received = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ApplicationMessageReceivedAsync += _ =>
        {
            received.TrySetResult();
            return Task.CompletedTask;
        };
        await client.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var publish = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("x").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MqttClientPublishReasonCode.Success, publish.ReasonCode);
        await received.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task EmptyClientId_Mqtt5_WithAWill_HasItsSession_AndItsWillIsPublished()
    {
        // The session grain used to be asked for the empty key: such a client was refused as server unavailable.
        var topic = $"assigned-will/{Guid.NewGuid():N}";
        var watcher = await node.ConnectAsync(NewId("watch"));
        var wills = await SubscribeAsync(watcher, topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var client = node.NewClient();

        var result = await client.ConnectAsync(node.Options("").WithCleanStart().WithWillTopic(topic).WithWillPayload("gone").Build());

        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        client.Dispose();   // no DISCONNECT: the will is due
        await Eventually.True(() => Task.FromResult(wills.Count == 1), "the will of the client with an assigned id");
    }

    [Fact]
    public async Task EmptyClientId_Mqtt311CleanSession_IsAccepted()
    {
        // What mosquitto_pub and mosquitto_sub send when no -i is given.
        var client = node.NewClient();
        var result = await client.ConnectAsync(node.Options("", MqttProtocolVersion.V311).WithCleanSession(true).Build());

        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        var root = NewId("anon");
        var received = await SubscribeAsync(client, $"{root}/#", MqttQualityOfServiceLevel.AtLeastOnce);
        await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{root}/x").WithPayload("hi").Build());
        await Eventually.True(() => Task.FromResult(!received.IsEmpty), "the anonymous client's own message");
    }

    [Fact]
    public async Task EmptyClientId_Mqtt311PersistentSession_IsRefused()
    {
        // MQTTnet's client will not even send this (spec 3.1.3-7), so the CONNECT is written by hand. The spec
        // wants CONNACK 2 then close; MQTTnet's packet reader rejects it before validation and just closes the
        // connection (a known deviation, docs/architecture.md). Either way the client is not connected.
        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, node.MqttPort);
        var stream = socket.GetStream();
        await stream.WriteAsync(ConnectPacket311("", cleanSession: false));
        var reply = new byte[4];
        int read;
        try
        {
            read = await stream.ReadAtLeastAsync(reply, 4, throwOnEndOfStream: false);
        }
        catch (IOException)
        {
            read = 0;   // reset by the server
        }

        Assert.True(read == 0 || reply.SequenceEqual(new byte[] { 0x20, 0x02, 0x00, 0x02 }), $"expected a refusal, got {Convert.ToHexString(reply[..read])}");
    }

    [Fact]
    public async Task MalformedPacket_DropsThatConnectionOnly()
    {
        var bystanderTopic = NewId("b");
        var bystander = await node.ConnectAsync(NewId("bystander"));
        var received = await SubscribeAsync(bystander, bystanderTopic, MqttQualityOfServiceLevel.AtLeastOnce);

        using var socket = new TcpClient();
        await socket.ConnectAsync(IPAddress.Loopback, node.MqttPort);
        var stream = socket.GetStream();
        // A CONNECT whose remaining length promises more than the protocol name it carries, then garbage.
        await stream.WriteAsync(new byte[] { 0x10, 0x0A, 0x00, 0x04, (byte)'M', (byte)'Q', 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF });
        var buffer = new byte[16];
        var closed = await Eventually.Get(async () =>
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(2));
            try
            {
                return await stream.ReadAsync(buffer, cts.Token) == 0;
            }
            catch (IOException)
            {
                return true;
            }
        }, c => c, "the server to close the malformed connection");
        Assert.True(closed);

        // The node and its other clients carry on.
        Assert.True(bystander.IsConnected);
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(bystanderTopic).WithPayload("still here").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await Eventually.True(() => Task.FromResult(!received.IsEmpty), "delivery after the malformed packet");
    }

    [Fact]
    public async Task Api_UnknownThing_Is404ProblemJson()
    {
        var response = await node.Http.GetAsync($"/api/things/{NewId("nobody")}/status");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var body = await response.Content.ReadAsStringAsync();
        Assert.Contains("\"code\":\"ResourceNotFoundException\"", body, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Api_UnknownRoute_Is404ProblemJson()
    {
        var response = await node.Http.PostAsync("/api/no/such/route", new StringContent("{not json", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }

    /// <summary>A minimal MQTT 3.1.1 CONNECT (clean session, keep alive 60 s) written by hand.</summary>
    private static byte[] ConnectPacket311(string clientId, bool cleanSession = true)
    {
        var id = Encoding.UTF8.GetBytes(clientId);
        var variable = new List<byte> { 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, (byte)(cleanSession ? 0x02 : 0x00), 0x00, 0x3C, (byte)(id.Length >> 8), (byte)id.Length };
        variable.AddRange(id);
        return [0x10, (byte)variable.Count, .. variable];
    }
}
