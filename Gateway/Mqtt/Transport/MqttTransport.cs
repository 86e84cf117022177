using System.Buffers;
using System.IO.Pipelines;
using System.Net;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using MQTTnet.Adapter;
using MQTTnet.AspNetCore;
using MQTTnet.Exceptions;
using MQTTnet.Formatter;
using MQTTnet.Packets;

namespace OrleansIot.Gateway.Mqtt.Transport;

/// <summary>
/// One MQTT connection's bytes, on Kestrel's pipes (TCP, TLS or WebSockets). MQTTnet reads and writes through it as
/// through its own adapter (CONNECT, acknowledgements, PINGRESP); the connection's <see cref="Routing.Outbox"/> writes
/// the PUBLISH packets of its subscriptions through it too, many at a time with one flush (<see cref="WriteAsync"/>):
/// the flush, not the encoding, is what costs per packet (a wake-up of the socket sender each). One lock keeps the
/// two writers' packets whole.
/// </summary>
internal sealed class MqttTransport : IMqttChannelAdapter
{
    private readonly ConnectionContext _connection;
    private readonly PipeReader _input;
    private readonly PipeWriter _output;
    private readonly SemaphoreSlim _writing = new(1, 1);
    private long _bytesReceived;
    private long _bytesSent;
    private Dictionary<string, ushort>? _aliases;   // topics the client knows by an alias of ours (under _writing)
    private bool _flushQueued;                      // acknowledgements written, their flush queued (under _writing)
    private Task _deferredFlush = Task.CompletedTask;

    public MqttTransport(MqttPacketFormatterAdapter formatter, ConnectionContext connection)
    {
        PacketFormatterAdapter = formatter;
        _connection = connection;
        _input = connection.Transport.Input;
        _output = connection.Transport.Output;
    }

    public long BytesReceived => Interlocked.Read(ref _bytesReceived);

    public long BytesSent => Interlocked.Read(ref _bytesSent);

    public MqttPacketFormatterAdapter PacketFormatterAdapter { get; }

    /// <summary>The client certificate of a TLS connection, directly or under MQTT over secure WebSockets.</summary>
    public X509Certificate2? ClientCertificate =>
        _connection.Features.Get<ITlsConnectionFeature>()?.ClientCertificate
        ?? _connection.Features.Get<IHttpContextFeature>()?.HttpContext?.Connection.ClientCertificate;

    public bool IsSecureConnection =>
        _connection.Features.Get<ITlsConnectionFeature>() is not null
        || _connection.Features.Get<IHttpContextFeature>()?.HttpContext?.Request.IsHttps == true;

    public EndPoint? RemoteEndPoint => _connection.RemoteEndPoint ?? HttpEndPoint(remote: true);

    public EndPoint? LocalEndPoint => _connection.LocalEndPoint ?? HttpEndPoint(remote: false);

    /// <summary>The connection's outbound queue, once the connection is accepted.</summary>
    public Routing.Outbox? Outbox { get; set; }

    /// <summary>
    /// How many topic aliases the server may use towards the client (its MQTT 5 Topic Alias Maximum, capped at
    /// <see cref="MaxServerAliases"/>; 0: none): the first topics it is sent get one, and later messages on them carry
    /// the alias instead of the topic.
    /// </summary>
    public int TopicAliasMaximum { get; set; }

    /// <summary>Aliases kept per connection at most, whatever the client allows (memory per connection stays bounded).</summary>
    public const int MaxServerAliases = 100;

    /// <summary>Set when the client sent a PUBLISH with a Topic Alias of 0 (a protocol error the decoded packet does not show).</summary>
    public bool SentTopicAliasZero { get; private set; }

    public Task ConnectAsync(CancellationToken cancellationToken) => Task.CompletedTask;   // accepted by Kestrel already

    public Task DisconnectAsync(CancellationToken cancellationToken)
    {
        _input.Complete();
        _output.Complete();
        return Task.CompletedTask;
    }

    public async Task<MqttPacket> ReceivePacketAsync(CancellationToken cancellationToken)
    {
        try
        {
            while (true)
            {
                var read = await _input.ReadAsync(cancellationToken);
                var buffer = read.Buffer;
                if (PacketFormatterAdapter.TryDecode(buffer, out var packet, out var consumed, out var observed, out var length))
                {
                    if (packet is MqttPublishPacket { TopicAlias: 0 } && PacketFormatterAdapter.ProtocolVersion == MqttProtocolVersion.V500
                        && PublishProperties.HasTopicAliasZero(buffer.Slice(buffer.Start, consumed)))
                    {
                        SentTopicAliasZero = true;
                    }

                    _input.AdvanceTo(consumed, observed);
                    Interlocked.Add(ref _bytesReceived, length);
                    return packet;
                }

                _input.AdvanceTo(consumed, observed);
                if (read.IsCompleted || read.IsCanceled)
                {
                    throw new MqttCommunicationException(buffer.IsEmpty ? "Connection Aborted" : "Connection closed within a packet");
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Nothing more is read after a broken packet, and nothing is written to a broken connection.
            await _input.CompleteAsync(ex);
            await _output.CompleteAsync(ex);
            throw;
        }
    }

    /// <summary>One packet, written and flushed at once (MQTTnet's own packets: acknowledgements, SUBACK, PINGRESP).</summary>
    public async Task SendPacketAsync(MqttPacket packet, CancellationToken cancellationToken)
    {
        // A flush held up by a client that does not read: wait for it, so unflushed acknowledgements stay bounded.
        await _deferredFlush.WaitAsync(cancellationToken);
        await _writing.WaitAsync(cancellationToken);
        try
        {
            Write(packet);
            if (packet is MqttPubAckPacket or MqttPubRecPacket or MqttPubRelPacket or MqttPubCompPacket)
            {
                // Acknowledgements are flushed once for all those MQTTnet's send loop writes in a row: the flush runs
                // after the loop yields (queued locally to this thread), not once per packet.
                if (!_flushQueued)
                {
                    _flushQueued = true;
                    ThreadPool.UnsafeQueueUserWorkItem(static transport => transport._deferredFlush = transport.FlushQueuedAsync(), this, preferLocal: true);
                }

                return;
            }

            await _output.FlushAsync(cancellationToken);   // CONNACK, SUBACK, PINGRESP, DISCONNECT: at once
        }
        finally
        {
            _writing.Release();
        }
    }

    private async Task FlushQueuedAsync()
    {
        await _writing.WaitAsync();
        try
        {
            _flushQueued = false;
            await _output.FlushAsync();
        }
        catch (Exception ex) when (ex is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // the connection is closing: its reader ends it
        }
        finally
        {
            _writing.Release();
        }
    }

    /// <summary>
    /// Several packets, then one flush. The flush waits while the socket has a full send buffer's worth unsent, which
    /// is how a subscriber that reads slowly slows its queue down instead of growing Kestrel's buffers.
    /// </summary>
    /// <returns>The packets not written because they were larger than <paramref name="maximumPacketSize"/> (0: no limit), or null.</returns>
    public async ValueTask<List<MqttPacket>?> WriteAsync(IReadOnlyList<MqttPacket> packets, uint maximumPacketSize, CancellationToken cancellationToken)
    {
        List<MqttPacket>? tooLarge = null;
        await _writing.WaitAsync(cancellationToken);
        try
        {
            foreach (var packet in packets)
            {
                if (!Write(packet, maximumPacketSize))
                {
                    (tooLarge ??= []).Add(packet);
                }
            }

            var flushed = await _output.FlushAsync(cancellationToken);
            if (flushed.IsCompleted || flushed.IsCanceled)
            {
                throw new MqttCommunicationException("the connection is closed");
            }

            return tooLarge;
        }
        finally
        {
            _writing.Release();
        }
    }

    public void ResetStatistics()
    {
        Interlocked.Exchange(ref _bytesReceived, 0);
        Interlocked.Exchange(ref _bytesSent, 0);
    }

    public void Dispose() => _writing.Dispose();

    /// <summary>Encodes into the pipe's memory (the encoder's buffer is reused by the next packet, so it is copied now); false, and nothing written, when the packet is larger than the limit.</summary>
    private bool Write(MqttPacket packet, uint maximumPacketSize = 0)
    {
        var publish = packet as MqttPublishPacket;
        var topic = publish?.Topic;
        try
        {
            var newAlias = publish is not null && TopicAliasMaximum > 0 && Alias(publish);
            var encoded = PacketFormatterAdapter.Encode(packet);
            if (maximumPacketSize > 0 && encoded.Length > maximumPacketSize)
            {
                if (newAlias)
                {
                    _aliases!.Remove(topic!);   // never sent: the client does not know it
                }

                return false;
            }

            _output.Write(encoded.Packet.AsSpan());
            foreach (var segment in encoded.Payload)
            {
                _output.Write(segment.Span);
            }

            Interlocked.Add(ref _bytesSent, encoded.Length);
            return true;
        }
        finally
        {
            PacketFormatterAdapter.Cleanup();
            if (publish is not null)
            {
                // The packet as it was: sent again after a reconnect, it starts a new connection's aliases.
                publish.Topic = topic;
                publish.TopicAlias = 0;
            }
        }
    }

    /// <summary>A topic the client already has an alias for goes as the alias alone; a new one gets the next alias while there are any.</summary>
    /// <returns>True when a new alias was given (it is known to the client once this packet is written).</returns>
    private bool Alias(MqttPublishPacket publish)
    {
        var aliases = _aliases ??= new Dictionary<string, ushort>(StringComparer.Ordinal);
        if (aliases.TryGetValue(publish.Topic, out var alias))
        {
            publish.TopicAlias = alias;
            publish.Topic = string.Empty;
            return false;
        }

        if (aliases.Count >= Math.Min(TopicAliasMaximum, MaxServerAliases))
        {
            return false;
        }

        alias = (ushort)(aliases.Count + 1);
        aliases[publish.Topic] = alias;
        publish.TopicAlias = alias;   // topic and alias: the client learns the mapping
        return true;
    }

    private IPEndPoint? HttpEndPoint(bool remote) =>
        _connection.Features.Get<IHttpConnectionFeature>() is { } http && (remote ? http.RemoteIpAddress : http.LocalIpAddress) is { } address
            ? new IPEndPoint(address, remote ? http.RemotePort : http.LocalPort)
            : null;
}
