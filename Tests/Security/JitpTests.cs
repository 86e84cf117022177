using System.Net;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using MQTTnet;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Security;

/// <summary>
/// Just-in-time provisioning: a CA registered with AWS's JITP registration config (the developer guide's, unchanged)
/// provisions a device from its certificate's subject on the device's first connection, which then goes on.
/// </summary>
public sealed class JitpTests(SecureNodeFixture node) : IClassFixture<SecureNodeFixture>
{
    /// <summary>What AWS's example template needs to exist: its thing type, its groups, and a group policy to connect by.</summary>
    private async Task PrepareRegistryAsync(string country)
    {
        var types = await node.Http.PostAsync("/api/thing-types/lightBulb-versionA", ClaimRig.Body(new JsonObject()));
        Assert.True(types.IsSuccessStatusCode || types.StatusCode == HttpStatusCode.Conflict, await types.Content.ReadAsStringAsync());
        foreach (var group in (string[])["v1-lightbulbs", country])
        {
            var created = await node.Http.PostAsync($"/api/thing-groups/{group}", ClaimRig.Body(new JsonObject()));
            Assert.True(created.IsSuccessStatusCode || created.StatusCode == HttpStatusCode.Conflict, await created.Content.ReadAsStringAsync());
        }

        // The template's own policy allows one publish in another account; connecting is the fleet's group policy.
        await Devices.CreatePolicyAsync(node.Http, "lightbulbs-connect", Devices.PerThingPolicy);
        var groupArn = (string)(await ApiAssert.OkAsync(await node.Http.GetAsync("/api/thing-groups/v1-lightbulbs")))["thingGroupArn"]!;
        await ApiAssert.OkAsync(await node.Http.PutAsync("/api/target-policies/lightbulbs-connect", ClaimRig.Body(new JsonObject { ["target"] = groupArn })));
    }

    private async Task<X509Certificate2> RegisterCaAsync(JsonNode? registrationConfig)
    {
        var code = (string)(await ApiAssert.OkAsync(await node.Http.GetAsync("/api/registrationcode")))["registrationCode"]!;
        var ca = TestCertificates.NewCa("Bulb CA " + Guid.NewGuid());
        var body = new JsonObject
        {
            ["caCertificate"] = ca.ExportCertificatePem(),
            ["verificationCertificate"] = TestCertificates.Issue(ca, code).ExportCertificatePem(),
            ["registrationConfig"] = registrationConfig,
        };
        await ApiAssert.OkAsync(await node.Http.PostAsync("/api/cacertificate?setAsActive=true&allowAutoRegistration=true", ClaimRig.Body(body)));
        return ca;
    }

    private static JsonNode AwsRegistrationConfig() =>
        JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Provisioning", "AwsExamples", "jitp-registration-config.json")))!;

    private async Task<MqttClientConnectResult> ConnectAsync(X509Certificate2 device, string clientId) =>
        await node.NewClient().ConnectAsync(Devices.Mtls(node, clientId, device, await Devices.PlatformCaAsync(node.Http)).Build());

    [Fact]
    public async Task FirstConnection_ProvisionsTheDeviceFromItsCertificate_AndIsAccepted()
    {
        await PrepareRegistryAsync("US");
        var config = AwsRegistrationConfig();
        using var ca = await RegisterCaAsync(config.DeepClone());
        var described = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/cacertificate/{TestCertificates.Id(ca)}"));
        Assert.Equal((string)config["templateBody"]!, (string)described["registrationConfig"]!["templateBody"]!);
        var bulb = "bulb-" + Guid.NewGuid().ToString("N")[..8];
        using var device = TestCertificates.Issue(ca, new X500DistinguishedName($"CN={bulb}, SERIALNUMBER=SN-0042, C=US"));

        var first = await ConnectAsync(device, bulb);

        Assert.Equal(MqttClientConnectResultCode.Success, first.ResultCode);
        var thing = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{bulb}"));
        Assert.Equal("lightBulb-versionA", (string)thing["thingTypeName"]!);
        Assert.Equal("v1", (string)thing["attributes"]!["version"]!);
        Assert.Equal("SN-0042", (string)thing["attributes"]!["serialNumber"]!);
        var groups = (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{bulb}/thing-groups")))["thingGroups"]!.AsArray();
        Assert.Equal(["US", "v1-lightbulbs"], groups.Select(g => (string)g!["groupName"]!).Order(StringComparer.Ordinal));
        var certificate = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/certificates/{TestCertificates.Id(device)}"));
        Assert.Equal("ACTIVE", (string)certificate["certificateDescription"]!["status"]!);
        var principals = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{bulb}/principals"));
        Assert.Contains((string)certificate["certificateDescription"]!["certificateArn"]!, principals["principals"]!.AsArray().Select(p => (string)p!));
        Assert.Equal(MqttClientConnectResultCode.Success, (await ConnectAsync(device, bulb)).ResultCode);   // and from now on
    }

    [Fact]
    public async Task ACertificateWithoutAFieldTheTemplateDeclares_IsRefused_AndNothingIsProvisioned()
    {
        await PrepareRegistryAsync("US");
        using var ca = await RegisterCaAsync(AwsRegistrationConfig());
        var bulb = "nocountry-" + Guid.NewGuid().ToString("N")[..8];
        using var device = TestCertificates.Issue(ca, new X500DistinguishedName($"CN={bulb}, SERIALNUMBER=SN-1"));   // no C=

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, (await ConnectAsync(device, bulb)).ResultCode);

        Assert.Equal(HttpStatusCode.NotFound, (await node.Http.GetAsync($"/api/things/{bulb}")).StatusCode);
        var certificate = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/certificates/{TestCertificates.Id(device)}"));
        Assert.Equal("PENDING_ACTIVATION", (string)certificate["certificateDescription"]!["status"]!);   // registered, as JITR does
    }

    [Theory]
    [InlineData("""{"templateBody":"{\"Parameters\":{\"AWS::IoT::Certificate::ShoeSize\":{\"Type\":\"String\"}},\"Resources\":{}}"}""", "ShoeSize")]
    [InlineData("""{"templateBody":"not json"}""", "not valid JSON")]
    [InlineData("""{"templateName":"no-such-template"}""", "no-such-template")]
    public async Task ABadRegistrationConfig_IsRefused_AndTheCaIsNotRegistered(string registrationConfig, string named)
    {
        var code = (string)(await ApiAssert.OkAsync(await node.Http.GetAsync("/api/registrationcode")))["registrationCode"]!;
        using var ca = TestCertificates.NewCa("Bad CA " + Guid.NewGuid());
        var body = new JsonObject
        {
            ["caCertificate"] = ca.ExportCertificatePem(),
            ["verificationCertificate"] = TestCertificates.Issue(ca, code).ExportCertificatePem(),
            ["registrationConfig"] = JsonNode.Parse(registrationConfig),
        };

        var response = await node.Http.PostAsync("/api/cacertificate?setAsActive=true&allowAutoRegistration=true", ClaimRig.Body(body));

        Assert.Contains(named, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(response.IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await node.Http.GetAsync($"/api/cacertificate/{TestCertificates.Id(ca)}")).StatusCode);
    }
}
