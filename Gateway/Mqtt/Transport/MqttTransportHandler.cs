using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using MQTTnet.Adapter;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Formatter;
using MQTTnet.Server;

namespace OrleansIot.Gateway.Mqtt.Transport;

/// <summary>
/// Hands Kestrel's MQTT connections (TCP, TLS, WebSockets) to MQTTnet's server as <see cref="MqttTransport"/>s: the
/// server adapter MQTTnet.AspNetCore's connection handler would be, with our transport, whose batched writes the
/// outbound path needs.
/// </summary>
internal sealed class MqttTransportHandler : ConnectionHandler, IMqttServerAdapter
{
    private MqttServerOptions _options = null!;

    public Func<IMqttChannelAdapter, Task>? ClientHandler { get; set; }

    public override async Task OnConnectedAsync(ConnectionContext connection)
    {
        // WebSockets carry MQTT in binary frames.
        if (connection.Features.Get<ITransferFormatFeature>() is { } format)
        {
            format.ActiveFormat = TransferFormat.Binary;
        }

        if (ClientHandler is not { } handler)
        {
            connection.Abort();   // the MQTT server is not started yet (or stopping)
            return;
        }

        using var transport = new MqttTransport(new MqttPacketFormatterAdapter(new MqttBufferWriter(_options.WriterBufferSize, _options.WriterBufferSizeMax)), connection);
        await handler(transport);
    }

    public Task StartAsync(MqttServerOptions options, IMqttNetLogger logger)
    {
        _options = options;
        return Task.CompletedTask;
    }

    public Task StopAsync() => Task.CompletedTask;

    public void Dispose()
    {
    }
}
