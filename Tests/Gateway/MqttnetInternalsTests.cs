using Microsoft.AspNetCore.Connections;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet.Formatter;
using MQTTnet.Packets;
using MQTTnet.Server;
using OrleansIot.Gateway.Mqtt;
using OrleansIot.Gateway.Mqtt.Transport;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Gateway;

/// <summary>
/// One test per non-public MQTTnet member the gateway reaches (all in <see cref="MqttnetInternals"/>): an MQTTnet
/// upgrade that moves one fails here, by name, and the node refuses to start with the same message.
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class MqttnetInternalsTests(NodeFixture node)
{
    [Fact]
    public void Verify_FindsEveryMemberInThePinnedMqttnet() => MqttnetInternals.Verify();

    [Fact]
    public void ConnectPacketOf_IsTheConnectBeingValidated()
    {
        var packet = new MqttConnectPacket { ClientId = "validated", KeepAlivePeriod = 60 };
        var pipe = new System.IO.Pipelines.Pipe();
        var connection = new DefaultConnectionContext("validating", new Duplex(pipe.Reader, pipe.Writer), new Duplex(pipe.Reader, pipe.Writer));
        using var transport = new MqttTransport(new MqttPacketFormatterAdapter(MqttProtocolVersion.V311, new MqttBufferWriter(128, 1024)), connection);
        var e = new ValidatingConnectionEventArgs(packet, transport, new Dictionary<object, object>(), CancellationToken.None);

        Assert.Same(packet, MqttnetInternals.ConnectPacketOf(e));
    }

    [Fact]
    public async Task SessionOf_IsTheConnectedClientsSession()
    {
        var clientId = NewId("internals");
        await node.ConnectAsync(clientId);
        var mqtt = node.App.Services.GetRequiredService<MqttServer>();

        var session = MqttnetInternals.SessionOf(await mqtt.GetSessionAsync(clientId));

        Assert.Equal(clientId, session.Id);
    }

    private sealed class Duplex(System.IO.Pipelines.PipeReader input, System.IO.Pipelines.PipeWriter output) : System.IO.Pipelines.IDuplexPipe
    {
        public System.IO.Pipelines.PipeReader Input { get; } = input;

        public System.IO.Pipelines.PipeWriter Output { get; } = output;
    }
}
