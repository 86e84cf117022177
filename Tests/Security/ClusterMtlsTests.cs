using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Security;

/// <summary>Identity changes made through one node reach the connections on the other.</summary>
public sealed class ClusterMtlsTests(SecureTwoNodeFixture nodes) : IClassFixture<SecureTwoNodeFixture>
{
    private const string PolicyName = "per-thing";

    private async Task<(DeviceCredentials Device, IMqttClient Client)> ConnectOnBAsync(string prefix)
    {
        await Devices.CreatePolicyAsync(nodes.A.Http, PolicyName, Devices.PerThingPolicy);
        var device = await Devices.CreateAsync(nodes.A.Http, $"{prefix}-{Guid.NewGuid():N}"[..24], PolicyName);
        var ca = await Devices.PlatformCaAsync(nodes.B.Http);
        var client = nodes.B.NewClient();
        var result = await client.ConnectAsync(Devices.Mtls(nodes.B, device.ThingName, device.Certificate, ca).Build());
        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        return (device, client);
    }

    [Fact]
    public async Task RevokingOnA_DisconnectsTheSessionOnB_WithinOneSecond()
    {
        var (device, client) = await ConnectOnBAsync("rev2");
        var closed = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += e =>
        {
            closed.TrySetResult(e);
            return Task.CompletedTask;
        };

        var clock = Stopwatch.StartNew();
        await ApiAssert.OkAsync(await nodes.A.Http.PutAsync($"/api/certificates/{device.CertificateId}?newStatus=REVOKED", null));
        var disconnected = await closed.Task.WaitAsync(TimeSpan.FromSeconds(5));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"closed after {clock.ElapsedMilliseconds} ms");
        Assert.Equal(MqttClientDisconnectReason.NotAuthorized, disconnected.Reason);
        var ca = await Devices.PlatformCaAsync(nodes.B.Http);
        var again = await nodes.B.NewClient().ConnectAsync(Devices.Mtls(nodes.B, device.ThingName, device.Certificate, ca).Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, again.ResultCode);
    }

    [Fact]
    public async Task APolicyChangedOnA_AppliesToTheConnectionOnB()
    {
        var (device, client) = await ConnectOnBAsync("pol2");
        var denyAll = "deny-" + Guid.NewGuid().ToString("N")[..8];
        await Devices.CreatePolicyAsync(nodes.A.Http, denyAll, """{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"iot:Publish","Resource":"*"}]}""");
        Assert.Equal(MqttClientPublishReasonCode.Success, (await client.PublishAsync(Message($"devices/{device.ThingName}/t"))).ReasonCode);

        await ApiAssert.OkAsync(await nodes.A.Http.PutAsync($"/api/target-policies/{denyAll}", new StringContent(new JsonObject { ["target"] = device.CertificateArn }.ToJsonString(), Encoding.UTF8, "application/json")));

        // The explicit deny wins over the per-thing allow, on the other node too.
        await Eventually.True(
            async () => (await client.PublishAsync(Message($"devices/{device.ThingName}/t"))).ReasonCode == MqttClientPublishReasonCode.NotAuthorized,
            "the publish denied on B", TimeSpan.FromSeconds(2));
    }

    private static MqttApplicationMessage Message(string topic) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload("1"u8.ToArray()).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
}
