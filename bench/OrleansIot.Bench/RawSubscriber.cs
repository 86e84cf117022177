using System.Buffers.Binary;
using System.Net.Sockets;
using System.Text;

namespace OrleansIot.Bench;

/// <summary>
/// A subscriber that is never the bottleneck: MQTT 3.1.1 over a plain socket, written for the load generator alone.
/// It reads whatever the socket has, hands every PUBLISH payload to a callback, and acknowledges all the QoS 1
/// messages of one read in a single write (an MQTTnet client sends one PUBACK per message and caps a subscriber near
/// 4,000 QoS 1 msg/s on this machine, which measured the tool, not the broker).
/// </summary>
internal sealed class RawSubscriber : IAsyncDisposable
{
    private readonly Socket _socket;
    private readonly Action<ReadOnlySpan<byte>> _onPayload;
    private readonly CancellationTokenSource _stop = new();
    private Task _reading = Task.CompletedTask;

    private RawSubscriber(Socket socket, Action<ReadOnlySpan<byte>> onPayload)
    {
        _socket = socket;
        _onPayload = onPayload;
    }

    public static async Task<RawSubscriber> ConnectAsync(string host, int port, string clientId, string filter, int qos, Action<ReadOnlySpan<byte>> onPayload, CancellationToken cancel)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true, ReceiveBufferSize = 1 << 20 };
        await socket.ConnectAsync(host, port, cancel);
        var subscriber = new RawSubscriber(socket, onPayload);
        await subscriber.SendAsync(Connect(clientId), cancel);
        var buffer = new byte[4];
        await ReadExactlyAsync(socket, buffer, cancel);
        if (buffer[0] != 0x20 || buffer[3] != 0)
        {
            throw new InvalidOperationException($"CONNACK refused: return code {buffer[3]}");
        }

        await subscriber.SendAsync(Subscribe(filter, qos), cancel);
        var suback = new byte[5];
        await ReadExactlyAsync(socket, suback, cancel);
        if (suback[0] != 0x90 || suback[4] > 2)
        {
            throw new InvalidOperationException($"SUBACK refused: {suback[4]:x2}");
        }

        subscriber._reading = subscriber.ReadLoopAsync();
        return subscriber;
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _socket.SendAsync(new byte[] { 0xE0, 0x00 }, SocketFlags.None);   // DISCONNECT
        }
        catch (SocketException)
        {
        }

        _socket.Dispose();
        try
        {
            await _reading;
        }
        catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
        {
        }

        _stop.Dispose();
    }

    private async Task ReadLoopAsync()
    {
        var buffer = new byte[1 << 20];
        var acks = new byte[64 * 1024];
        var filled = 0;
        while (!_stop.IsCancellationRequested)
        {
            var read = await _socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, _stop.Token);
            if (read == 0)
            {
                return;
            }

            filled += read;
            var consumed = Process(buffer.AsSpan(0, filled), ref acks, out var ackLength);
            if (ackLength > 0)
            {
                await SendAsync(acks.AsMemory(0, ackLength), _stop.Token);
            }

            Buffer.BlockCopy(buffer, consumed, buffer, 0, filled - consumed);
            filled -= consumed;
            if (filled == buffer.Length)
            {
                Array.Resize(ref buffer, buffer.Length * 2);   // one packet larger than the buffer
            }
        }
    }

    /// <summary>Hands over the payloads of the whole packets in <paramref name="data"/> and writes their PUBACKs; returns the bytes consumed.</summary>
    private int Process(ReadOnlySpan<byte> data, ref byte[] acks, out int ackLength)
    {
        var offset = 0;
        ackLength = 0;
        while (TryPacket(data[offset..], out var header, out var body, out var length))
        {
            if ((header & 0xF0) == 0x30)
            {
                var topicLength = BinaryPrimitives.ReadUInt16BigEndian(body);
                var at = 2 + topicLength;
                if (((header >> 1) & 3) > 0)
                {
                    if (ackLength + 4 > acks.Length)
                    {
                        Array.Resize(ref acks, acks.Length * 2);
                    }

                    acks[ackLength] = 0x40;
                    acks[ackLength + 1] = 2;
                    acks[ackLength + 2] = body[at];
                    acks[ackLength + 3] = body[at + 1];
                    ackLength += 4;
                    at += 2;
                }

                _onPayload(body[at..]);
            }

            offset += length;
        }

        return offset;
    }

    /// <summary>One whole packet at the start of <paramref name="data"/>: its first byte, its body and its whole length.</summary>
    private static bool TryPacket(ReadOnlySpan<byte> data, out byte header, out ReadOnlySpan<byte> body, out int length)
    {
        header = 0;
        body = default;
        length = 0;
        if (data.Length < 2)
        {
            return false;
        }

        int remaining = 0, multiplier = 1, i = 1;
        while (true)
        {
            if (i >= data.Length)
            {
                return false;
            }

            var b = data[i++];
            remaining += (b & 0x7F) * multiplier;
            if ((b & 0x80) == 0)
            {
                break;
            }

            multiplier *= 128;
        }

        if (data.Length < i + remaining)
        {
            return false;
        }

        header = data[0];
        body = data.Slice(i, remaining);
        length = i + remaining;
        return true;
    }

    private async ValueTask SendAsync(ReadOnlyMemory<byte> data, CancellationToken cancel)
    {
        while (!data.IsEmpty)
        {
            var sent = await _socket.SendAsync(data, SocketFlags.None, cancel);
            data = data[sent..];
        }
    }

    private static async Task ReadExactlyAsync(Socket socket, byte[] buffer, CancellationToken cancel)
    {
        var filled = 0;
        while (filled < buffer.Length)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(filled), SocketFlags.None, cancel);
            filled += read == 0 ? throw new InvalidOperationException("the broker closed the connection") : read;
        }
    }

    private static byte[] Connect(string clientId)
    {
        var id = Encoding.UTF8.GetBytes(clientId);
        byte[] variable = [0, 4, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 4, 0x02, 0, 60];   // MQTT 3.1.1, clean session, keep-alive 60 s
        return Packet(0x10, [.. variable, (byte)(id.Length >> 8), (byte)id.Length, .. id]);
    }

    private static byte[] Subscribe(string filter, int qos)
    {
        var topic = Encoding.UTF8.GetBytes(filter);
        return Packet(0x82, [0, 1, (byte)(topic.Length >> 8), (byte)topic.Length, .. topic, (byte)qos]);
    }

    private static byte[] Packet(byte header, byte[] body)
    {
        var length = new List<byte>();
        var remaining = body.Length;
        do
        {
            var b = (byte)(remaining % 128);
            remaining /= 128;
            length.Add(remaining > 0 ? (byte)(b | 0x80) : b);
        }
        while (remaining > 0);

        return [header, .. length, .. body];
    }
}
