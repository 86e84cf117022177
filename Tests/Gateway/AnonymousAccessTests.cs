using MQTTnet;
using MQTTnet.Formatter;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Gateway;

/// <summary>A node with <c>Iot:Auth:AllowAnonymous=false</c> and one development user.</summary>
public sealed class ClosedNodeFixture : NodeFixture
{
    protected override IEnumerable<string> Settings => ["Iot:Auth:AllowAnonymous=false", "Iot:Auth:Users:dev=dev-password"];
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

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task ADevelopmentUser_Connects_AndMayPublish(MqttProtocolVersion version)
    {
        var client = node.NewClient();
        var result = await client.ConnectAsync(node.Options("dev-user-" + version, version).WithCredentials("dev", "dev-password").Build());

        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("dev/x").WithPayload("1").WithQualityOfServiceLevel(MQTTnet.Protocol.MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.True(client.IsConnected);
    }

    [Theory]
    [InlineData("dev", "wrong")]
    [InlineData("nobody", "dev-password")]
    public async Task AWrongUserOrPassword_IsRefusedAsBadCredentials(string user, string password)
    {
        var result = await node.NewClient().ConnectAsync(node.Options("dev-bad").WithCredentials(user, password).Build());
        Assert.Equal(MqttClientConnectResultCode.BadUserNameOrPassword, result.ResultCode);
    }
}
