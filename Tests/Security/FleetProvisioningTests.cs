using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Security;

/// <summary>A secure node whose ownership tokens last two seconds.</summary>
public sealed class ShortTokenNodeFixture : SecureNodeFixture
{
    protected override IEnumerable<string> Settings => ["Iot:Provisioning:OwnershipTokenLifetime=00:00:02"];
}

/// <summary>
/// A fleet provisioning set-up as an operator makes it (a thing group, a template, a claim certificate whose policy
/// allows only the provisioning topics) and the claim device connected over mTLS, subscribed to the answers.
/// </summary>
internal sealed class ClaimRig(NodeFixture node)
{
    public static StringContent Body(JsonNode json) => new(json.ToJsonString(), Encoding.UTF8, "application/json");

    private static string Template(string group) => $$"""
        {
          "Parameters": { "SerialNumber": { "Type": "String" }, "Color": { "Type": "String", "Default": "blue" } },
          "Resources": {
            "thing": { "Type": "AWS::IoT::Thing", "Properties": {
              "ThingName": { "Fn::Join": ["", ["sensor-", { "Ref": "SerialNumber" }]] },
              "AttributePayload": { "color": { "Ref": "Color" } },
              "ThingGroups": ["{{group}}"] } },
            "certificate": { "Type": "AWS::IoT::Certificate", "Properties": { "CertificateId": { "Ref": "AWS::IoT::Certificate::Id" }, "Status": "ACTIVE" } },
            "policy": { "Type": "AWS::IoT::Policy", "Properties": { "PolicyName": "per-thing" } }
          },
          "DeviceConfiguration": { "telemetryTopic": { "Fn::Sub": "devices/sensor-${SerialNumber}/telemetry" } }
        }
        """;

    /// <summary>A template, and a claim certificate whose policy allows only the provisioning topics.</summary>
    /// <summary>Set up, with the claim device connected and subscribed to the answers.</summary>
    public async Task<(string TemplateName, DeviceCredentials Claim, IMqttClient Client, Inbox Inbox)> ClaimConnectedAsync()
    {
        var (template, claim) = await SetUpAsync();
        var (client, inbox) = await ConnectClaimAsync(claim, template);
        return (template, claim, client, inbox);
    }

    public async Task<(string TemplateName, DeviceCredentials Claim)> SetUpAsync()
    {
        var name = "fleet-" + Guid.NewGuid().ToString("N")[..8];
        var group = name + "-group";
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/thing-groups/{group}", Body(new JsonObject())));
        await Devices.CreatePolicyAsync(node.Http, "per-thing", Devices.PerThingPolicy);
        await ApiAssert.OkAsync(await node.Http.PostAsync("/api/provisioning-templates", Body(new JsonObject
        {
            ["templateName"] = name,
            ["templateBody"] = Template(group),
            ["enabled"] = true,
        })));
        var claimPolicy = name + "-claim";
        await Devices.CreatePolicyAsync(node.Http, claimPolicy, $$"""
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
              {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:*:*:topic/$aws/certificates/create/*","arn:aws:iot:*:*:topic/$aws/provisioning-templates/{{name}}/provision/*"]},
              {"Effect":"Allow","Action":"iot:Subscribe","Resource":["arn:aws:iot:*:*:topicfilter/$aws/certificates/create/*","arn:aws:iot:*:*:topicfilter/$aws/provisioning-templates/{{name}}/provision/*"]}
            ]}
            """);
        return (name, await Devices.CreateAsync(node.Http, name + "-claim", claimPolicy));
    }

    public sealed class Inbox
    {
        private readonly List<MqttApplicationMessage> _messages = [];

        public Inbox(IMqttClient client) => client.ApplicationMessageReceivedAsync += e =>
        {
            lock (_messages)
            {
                _messages.Add(e.ApplicationMessage);
            }

            return Task.CompletedTask;
        };

        public int Count
        {
            get
            {
                lock (_messages)
                {
                    return _messages.Count;
                }
            }
        }

        public Task<JsonNode> NextAsync(string topic) => Eventually.Get(
            () =>
            {
                lock (_messages)
                {
                    var found = _messages.FirstOrDefault(m => m.Topic == topic);
                    if (found is not null)
                    {
                        _messages.Remove(found);
                    }

                    return Task.FromResult(found is null ? null : JsonNode.Parse(found.ConvertPayloadToString()));
                }
            },
            m => m is not null,
            "a message on " + topic)!;
    }

    public async Task<(IMqttClient Client, Inbox Inbox)> ConnectClaimAsync(DeviceCredentials claim, string template)
    {
        var ca = await Devices.PlatformCaAsync(node.Http);
        var client = node.NewClient();
        Assert.Equal(MqttClientConnectResultCode.Success, (await client.ConnectAsync(Devices.Mtls(node, "claim-" + Guid.NewGuid().ToString("N")[..8], claim.Certificate, ca).Build())).ResultCode);
        var inbox = new Inbox(client);
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter("$aws/certificates/create/json/accepted", MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter("$aws/certificates/create/json/rejected", MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter($"$aws/provisioning-templates/{template}/provision/json/accepted", MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter($"$aws/provisioning-templates/{template}/provision/json/rejected", MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());
        return (client, inbox);
    }

    public static Task<MqttClientPublishResult> PublishAsync(IMqttClient client, string topic, string payload) =>
        client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(Encoding.UTF8.GetBytes(payload)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
}

/// <summary>Fleet provisioning by claim: a device with a shared claim certificate gets its own certificate and thing.</summary>
public sealed class FleetProvisioningTests(SecureNodeFixture node) : IClassFixture<SecureNodeFixture>
{
    private readonly ClaimRig _rig = new(node);

    [Fact]
    public async Task ADeviceWithTheClaimCertificate_GetsItsOwnCertificateAndThing_ThenConnectsAsItself()
    {
        var (template, claim) = await _rig.SetUpAsync();
        var eavesdropper = await node.ConnectAsync("eaves-" + Guid.NewGuid().ToString("N")[..8]);
        var overheard = new ClaimRig.Inbox(eavesdropper);
        await eavesdropper.SubscribeAsync("$aws/certificates/#");
        var (client, inbox) = await _rig.ConnectClaimAsync(claim, template);
        var serial = Guid.NewGuid().ToString("N")[..8];

        await ClaimRig.PublishAsync(client, "$aws/certificates/create/json", "");
        var created = await inbox.NextAsync("$aws/certificates/create/json/accepted");
        var certificateId = (string)created["certificateId"]!;
        Assert.Equal("PENDING_ACTIVATION", (string)(await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/certificates/{certificateId}")))["certificateDescription"]!["status"]!);

        await ClaimRig.PublishAsync(client, $"$aws/provisioning-templates/{template}/provision/json",
            new JsonObject { ["certificateOwnershipToken"] = (string)created["certificateOwnershipToken"]!, ["parameters"] = new JsonObject { ["SerialNumber"] = serial } }.ToJsonString());
        var registered = await inbox.NextAsync($"$aws/provisioning-templates/{template}/provision/json/accepted");

        var thing = $"sensor-{serial}";
        Assert.Equal(thing, (string)registered["thingName"]!);
        Assert.Equal($"devices/{thing}/telemetry", (string)registered["deviceConfiguration"]!["telemetryTopic"]!);
        var described = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{thing}"));
        Assert.Equal("blue", (string)described["attributes"]!["color"]!);
        Assert.Contains(template + "-group", (await node.Http.GetStringAsync($"/api/things/{thing}/thing-groups")), StringComparison.Ordinal);
        Assert.Equal("ACTIVE", (string)(await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/certificates/{certificateId}")))["certificateDescription"]!["status"]!);

        using var own = Devices.WithKey((string)created["certificatePem"]!, (string)created["privateKey"]!);
        var ca = await Devices.PlatformCaAsync(node.Http);
        var device = node.NewClient();
        Assert.Equal(MqttClientConnectResultCode.Success, (await device.ConnectAsync(Devices.Mtls(node, thing, own, ca).Build())).ResultCode);
        var publish = await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"devices/{thing}/telemetry").WithPayload("{}").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MqttClientPublishReasonCode.Success, publish.ReasonCode);

        var audited = await Eventually.Get(
            async () => (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/audit?principal={claim.CertificateId}")))["events"]!.AsArray(),
            e => e.Count >= 2, "the provisioning calls audited with the claim certificate");
        Assert.Contains(audited, e => (string)e!["operation"]! == "CreateKeysAndCertificate" && (int)e["status"]! == 200);
        Assert.Contains(audited, e => (string)e!["operation"]! == "RegisterThing" && (int)e["status"]! == 200);

        // The answers, with a private key, went to the requester alone: a marker the eavesdropper publishes after them
        // reaches it, and nothing else did (a routed answer would have been delivered before its PUBACK).
        await eavesdropper.PublishAsync(new MqttApplicationMessageBuilder().WithTopic("$aws/certificates/marker").WithPayload("{}").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await overheard.NextAsync("$aws/certificates/marker");
        Assert.Equal(0, overheard.Count);
    }

    [Fact]
    public async Task BadRequests_GetAwsRejectedDocuments()
    {
        var (template, claim) = await _rig.SetUpAsync();
        var (client, inbox) = await _rig.ConnectClaimAsync(claim, template);
        var provision = $"$aws/provisioning-templates/{template}/provision/json";

        await ClaimRig.PublishAsync(client, provision, """{"parameters":{"SerialNumber":"1"}}""");
        var empty = await inbox.NextAsync(provision + "/rejected");
        Assert.Equal(400, (int)empty["statusCode"]!);
        Assert.Equal("InvalidCertificateOwnershipToken", (string)empty["errorCode"]!);
        Assert.Equal("Certificate ownership token cannot be empty.", (string)empty["errorMessage"]!);

        await ClaimRig.PublishAsync(client, provision, """{"certificateOwnershipToken":"forged.token","parameters":{}}""");
        Assert.Equal("InvalidCertificateOwnershipToken", (string)(await inbox.NextAsync(provision + "/rejected"))["errorCode"]!);

        await ClaimRig.PublishAsync(client, "$aws/certificates/create/json", "");
        var created = await inbox.NextAsync("$aws/certificates/create/json/accepted");
        await ClaimRig.PublishAsync(client, provision, new JsonObject { ["certificateOwnershipToken"] = (string)created["certificateOwnershipToken"]!, ["parameters"] = new JsonObject() }.ToJsonString());
        var missing = await inbox.NextAsync(provision + "/rejected");
        Assert.Equal("InvalidParameters", (string)missing["errorCode"]!);
        Assert.Equal("PENDING_ACTIVATION", (string)(await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/certificates/{(string)created["certificateId"]!}")))["certificateDescription"]!["status"]!);

        await ClaimRig.PublishAsync(client, $"$aws/provisioning-templates/{template}/provision/json", "not json");
        Assert.Equal("InvalidPayload", (string)(await inbox.NextAsync(provision + "/rejected"))["errorCode"]!);
    }

    [Theory]
    [InlineData("bad name!", """{"Resources":{}}""")]
    [InlineData("ok-name", """{"Resources":{"x":{"Type":"AWS::S3::Bucket"}}}""")]
    [InlineData("ok-name", "not json")]
    public async Task InvalidTemplates_AreRefused_AndNothingIsStored(string name, string body)
    {
        var response = await node.Http.PostAsync("/api/provisioning-templates", ClaimRig.Body(new JsonObject { ["templateName"] = name, ["templateBody"] = body, ["enabled"] = true }));
        await ApiAssert.ProblemAsync(response, HttpStatusCode.BadRequest, "InvalidRequestException");
        Assert.DoesNotContain($"\"{name}\"", await node.Http.GetStringAsync("/api/provisioning-templates"), StringComparison.Ordinal);
    }
}

/// <summary>What happens to a certificate whose ownership token is never used.</summary>
public sealed class FleetProvisioningExpiryTests(ShortTokenNodeFixture node) : IClassFixture<ShortTokenNodeFixture>
{
    [Fact]
    public async Task ACertificateNotRegisteredBeforeItsTokenExpires_IsDeleted_AndTheTokenRefused()
    {
        var (template, claim, client, inbox) = await new ClaimRig(node).ClaimConnectedAsync();
        await ClaimRig.PublishAsync(client, "$aws/certificates/create/json", "");
        var created = await inbox.NextAsync("$aws/certificates/create/json/accepted");
        var id = (string)created["certificateId"]!;

        await Eventually.True(async () => (await node.Http.GetAsync($"/api/certificates/{id}")).StatusCode == HttpStatusCode.NotFound,
            "the unused certificate deleted", TimeSpan.FromSeconds(30));

        var provision = $"$aws/provisioning-templates/{template}/provision/json";
        await ClaimRig.PublishAsync(client, provision, new JsonObject { ["certificateOwnershipToken"] = (string)created["certificateOwnershipToken"]!, ["parameters"] = new JsonObject { ["SerialNumber"] = "late" } }.ToJsonString());
        Assert.Equal("InvalidCertificateOwnershipToken", (string)(await inbox.NextAsync(provision + "/rejected"))["errorCode"]!);
        Assert.NotNull(claim);
    }
}
