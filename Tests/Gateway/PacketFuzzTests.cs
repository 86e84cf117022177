using System.Net;
using System.Net.Sockets;
using System.Text;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Gateway;

/// <summary>
/// Bounded fuzzing of the MQTT listener: random bytes and mutations of valid packets, on many connections, then
/// a normal client must still connect, subscribe and receive. Seeded, so a failure reproduces.
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class PacketFuzzTests(NodeFixture node)
{
    private const int Connections = 150;

    [Fact]
    public async Task RandomAndMutatedPackets_DoNotTakeTheNodeDown()
    {
        var random = new Random(20261127);
        var inputs = Enumerable.Range(0, Connections).Select(i => Input(random, i)).ToList();
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));

        // Each connection writes its input and closes after a short read: a client that sends part of a packet and
        // goes away is exactly what once made MQTTnet.AspNetCore spin forever (see TruncatedPacketGuard).
        await Parallel.ForEachAsync(inputs, new ParallelOptions { MaxDegreeOfParallelism = 16, CancellationToken = deadline.Token }, async (bytes, ct) =>
        {
            using var socket = new TcpClient();
            await socket.ConnectAsync(IPAddress.Loopback, node.MqttPort, ct);
            var stream = socket.GetStream();
            try
            {
                await stream.WriteAsync(bytes, ct);
                // Read whatever comes back (CONNACK, DISCONNECT) until the server closes or a short timeout.
                using var read = CancellationTokenSource.CreateLinkedTokenSource(ct);
                read.CancelAfter(TimeSpan.FromMilliseconds(300));
                var buffer = new byte[256];
                while (await stream.ReadAsync(buffer, read.Token) > 0)
                {
                }
            }
            catch (Exception ex) when (ex is IOException or OperationCanceledException or SocketException)
            {
                // the server closing on garbage is the expected outcome
            }
        });

        // The node still serves a normal client end to end.
        var topic = "fuzz/" + Guid.NewGuid().ToString("N")[..8];
        var subscriber = await node.ConnectAsync("fuzz-sub-" + Guid.NewGuid().ToString("N")[..8]);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage.ConvertPayloadToString());
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(topic).Build());
        var publisher = await node.ConnectAsync("fuzz-pub-" + Guid.NewGuid().ToString("N")[..8]);
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("alive").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal("alive", await received.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        Assert.True((await node.Http.GetAsync("/health")).IsSuccessStatusCode);
    }

    private static byte[] Input(Random random, int index)
    {
        var valid = ValidSession($"fuzz-{index}");
        switch (index % 5)
        {
            case 0:
                // pure noise
                var noise = new byte[random.Next(1, 512)];
                random.NextBytes(noise);
                return noise;
            case 1:
                // flip bytes of a valid CONNECT + SUBSCRIBE + PUBLISH sequence
                for (var i = 0; i < 1 + random.Next(6); i++)
                {
                    valid[random.Next(valid.Length)] ^= (byte)(1 << random.Next(8));
                }

                return valid;
            case 2:
                // truncated
                return valid[..random.Next(1, valid.Length)];
            case 3:
                // a valid CONNECT followed by noise
                var tail = new byte[random.Next(1, 256)];
                random.NextBytes(tail);
                return [.. valid[..ConnectLength(valid)], .. tail];
            default:
                // an absurd remaining length (0xFFFFFFFF-ish varint) after a PUBLISH header
                return [.. valid[..ConnectLength(valid)], 0x30, 0xFF, 0xFF, 0xFF, 0x7F, 0x00, 0x01, (byte)'a'];
        }
    }

    private static int ConnectLength(byte[] packets) => 2 + packets[1];

    /// <summary>CONNECT (3.1.1, clean), SUBSCRIBE a/#, PUBLISH QoS 1 to a/b.</summary>
    private static byte[] ValidSession(string clientId)
    {
        var id = Encoding.UTF8.GetBytes(clientId);
        var connect = new List<byte> { 0x00, 0x04, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 0x04, 0x02, 0x00, 0x3C, 0x00, (byte)id.Length };
        connect.AddRange(id);
        byte[] subscribe = [0x82, 0x08, 0x00, 0x01, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'#', 0x01];
        byte[] publish = [0x32, 0x09, 0x00, 0x03, (byte)'a', (byte)'/', (byte)'b', 0x00, 0x02, (byte)'h', (byte)'i'];
        return [0x10, (byte)connect.Count, .. connect, .. subscribe, .. publish];
    }
}
