using System.Net;
using System.Net.Sockets;
using System.Text;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// An MQTT 5 client written byte by byte, for what real clients will not send (a Topic Alias of 0, more publishes than
/// the Receive Maximum allows) and for reading the server's exact answer (the DISCONNECT's reason code).
/// </summary>
public sealed class RawMqtt5 : IAsyncDisposable
{
    private readonly TcpClient _socket = new();
    private NetworkStream _stream = null!;

    /// <summary>Connects (clean start) and returns the CONNACK's reason code.</summary>
    public static async Task<(RawMqtt5 Client, byte ConnAckReason)> ConnectAsync(int port, string clientId)
    {
        var client = new RawMqtt5();
        await client._socket.ConnectAsync(IPAddress.Loopback, port);
        client._stream = client._socket.GetStream();
        byte[] variable = [0, 4, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 5, 0x02, 0, 60, 0];
        await client.SendAsync(0x10, [.. variable, .. Str(clientId)]);
        var (type, body) = await client.ReadAsync();
        Assert.Equal(0x20, type & 0xF0);
        return (client, body[1]);
    }

    /// <summary>A PUBLISH with the given QoS, packet identifier and raw properties (id, value bytes...).</summary>
    public Task PublishAsync(string topic, int qos, ushort packetId, byte[] properties, string payload)
    {
        List<byte> body = [.. Str(topic)];
        if (qos > 0)
        {
            body.Add((byte)(packetId >> 8));
            body.Add((byte)packetId);
        }

        body.AddRange(VariableInteger(properties.Length));
        body.AddRange(properties);
        body.AddRange(Encoding.UTF8.GetBytes(payload));
        return SendAsync((byte)(0x30 | (qos << 1)), [.. body]);
    }

    /// <summary>PUBREL for a QoS 2 publish the server answered with PUBREC.</summary>
    public Task ReleaseAsync(ushort packetId) => SendAsync(0x62, [(byte)(packetId >> 8), (byte)packetId]);

    /// <summary>The next packet: its first byte and its body; (0, []) when the server closed the connection.</summary>
    public async Task<(byte Type, byte[] Body)> ReadAsync(TimeSpan? timeout = null)
    {
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(10));
        var first = new byte[1];
        if (await _stream.ReadAsync(first, cancel.Token) == 0)
        {
            return (0, []);
        }

        var length = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = new byte[1];
            await _stream.ReadExactlyAsync(b, cancel.Token);
            length |= (b[0] & 0x7F) << shift;
            if ((b[0] & 0x80) == 0)
            {
                break;
            }
        }

        var body = new byte[length];
        await _stream.ReadExactlyAsync(body, cancel.Token);
        return (first[0], body);
    }

    /// <summary>Reads until a DISCONNECT and returns its reason code (fails if the connection closes without one).</summary>
    public async Task<byte> DisconnectReasonAsync()
    {
        while (true)
        {
            var (type, body) = await ReadAsync();
            Assert.NotEqual(0, type);   // closed without DISCONNECT
            if ((type & 0xF0) == 0xE0)
            {
                return body.Length == 0 ? (byte)0 : body[0];
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        _socket.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task SendAsync(byte header, byte[] body) => await _stream.WriteAsync((byte[])[header, .. VariableInteger(body.Length), .. body]);

    private static byte[] Str(string value)
    {
        var bytes = Encoding.UTF8.GetBytes(value);
        return [(byte)(bytes.Length >> 8), (byte)bytes.Length, .. bytes];
    }

    private static List<byte> VariableInteger(int value)
    {
        List<byte> bytes = [];
        do
        {
            var b = (byte)(value % 128);
            value /= 128;
            bytes.Add(value > 0 ? (byte)(b | 0x80) : b);
        }
        while (value > 0);

        return bytes;
    }
}
