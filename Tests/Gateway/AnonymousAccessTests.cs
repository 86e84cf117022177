using MQTTnet;
using MQTTnet.Formatter;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Gateway;

/// <summary>A node with <c>Iot:Auth:AllowAnonymous=false</c>.</summary>
public sealed class ClosedNodeFixture : NodeFixture
{
    protected override IEnumerable<string> Settings => ["Iot:Auth:AllowAnonymous=false"];
}

public sealed class AnonymousAccessTests(ClosedNodeFixture node) : IClassFixture<ClosedNodeFixture>
{
    [Fact]
    public async Task WithAnonymousOff_Mqtt5Connect_IsRefusedAsNotAuthorized()
    {
        var result = await node.NewClient().ConnectAsync(node.Options("dev-1").Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, result.ResultCode);
    }

    [Fact]
    public async Task WithAnonymousOff_Mqtt311Connect_IsRefused()
    {
        var result = await node.NewClient().ConnectAsync(node.Options("dev-2", MqttProtocolVersion.V311).Build());
        Assert.NotEqual(MqttClientConnectResultCode.Success, result.ResultCode);
        Assert.Null(await node.GetThingAsync("dev-2"));
    }
}
