using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Security;

/// <summary>Just-in-time registration: a device's first connection registers its certificate from an auto-registering CA.</summary>
public sealed class JitrTests(SecureNodeFixture node) : IClassFixture<SecureNodeFixture>
{
    private static StringContent Body(JsonNode json) => new(json.ToJsonString(), Encoding.UTF8, "application/json");

    private async Task<X509Certificate2> RegisterCaAsync(bool autoRegistration)
    {
        var code = (string)(await ApiAssert.OkAsync(await node.Http.GetAsync("/api/registrationcode")))["registrationCode"]!;
        var ca = TestCertificates.NewCa("Fleet CA " + Guid.NewGuid());
        await ApiAssert.OkAsync(await node.Http.PostAsync(
            $"/api/cacertificate?setAsActive=true&allowAutoRegistration={(autoRegistration ? "true" : "false")}",
            Body(new JsonObject { ["caCertificate"] = ca.ExportCertificatePem(), ["verificationCertificate"] = TestCertificates.Issue(ca, code).ExportCertificatePem() })));
        return ca;
    }

    private async Task<MqttClientConnectResult> ConnectAsync(X509Certificate2 device, string clientId)
    {
        var platformCa = await Devices.PlatformCaAsync(node.Http);
        return await node.NewClient().ConnectAsync(Devices.Mtls(node, clientId, device, platformCa).Build());
    }

    [Fact]
    public async Task FirstConnection_RegistersTheCertificatePendingActivation_AndAnnouncesIt_ThenActivationLetsItIn()
    {
        using var ca = await RegisterCaAsync(autoRegistration: true);
        var caId = TestCertificates.Id(ca);
        var watcher = await node.ConnectAsync("jitr-watch-" + Guid.NewGuid().ToString("N")[..8]);
        var announced = new TaskCompletionSource<JsonNode>(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.ApplicationMessageReceivedAsync += e =>
        {
            announced.TrySetResult(JsonNode.Parse(e.ApplicationMessage.ConvertPayloadToString())!);
            return Task.CompletedTask;
        };
        await watcher.SubscribeAsync($"$aws/events/certificates/registered/{caId}");
        var thing = "jitr-" + Guid.NewGuid().ToString("N")[..8];
        using var device = TestCertificates.Issue(ca, thing);

        var first = await ConnectAsync(device, thing);

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, first.ResultCode);
        var registered = await announced.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal(TestCertificates.Id(device), (string)registered["certificateId"]!);
        Assert.Equal(caId, (string)registered["caCertificateId"]!);
        Assert.Equal("PENDING_ACTIVATION", (string)registered["certificateStatus"]!);
        var described = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/certificates/{TestCertificates.Id(device)}"));
        Assert.Equal("PENDING_ACTIVATION", (string)described["certificateDescription"]!["status"]!);
        var audited = await Eventually.Get(
            async () => (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/audit?principal={TestCertificates.Id(device)}")))["events"]!.AsArray(),
            e => e.Count > 0, "the JITR registration audited");
        Assert.Equal("RegisterCertificate", (string)audited[0]!["operation"]!);

        // What the usual rule + function does: activate, attach a policy.
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/certificates/{TestCertificates.Id(device)}?newStatus=ACTIVE", null));
        await Devices.CreatePolicyAsync(node.Http, "jitr-connect", """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}""");
        await ApiAssert.OkAsync(await node.Http.PutAsync("/api/target-policies/jitr-connect", Body(new JsonObject { ["target"] = (string)described["certificateDescription"]!["certificateArn"]! })));

        Assert.Equal(MqttClientConnectResultCode.Success, (await ConnectAsync(device, thing)).ResultCode);
    }

    [Fact]
    public async Task WithoutAutoRegistration_TheCertificateStaysUnknown()
    {
        using var ca = await RegisterCaAsync(autoRegistration: false);
        using var device = TestCertificates.Issue(ca, "no-jitr");

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, (await ConnectAsync(device, "no-jitr")).ResultCode);
        Assert.Equal(HttpStatusCode.NotFound, (await node.Http.GetAsync($"/api/certificates/{TestCertificates.Id(device)}")).StatusCode);
    }
}
