using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Security;

/// <summary>Devices on the mTLS listener: who gets in, and what the standard per-thing policy lets them do.</summary>
public sealed class MtlsTests(SecureNodeFixture node) : IClassFixture<SecureNodeFixture>
{
    private const string PolicyName = "per-thing";

    private static string NewThing(string prefix) => $"{prefix}-{Guid.NewGuid():N}"[..24];

    private async Task<DeviceCredentials> DeviceAsync(string prefix, string? policy = PolicyName, bool active = true)
    {
        await Devices.CreatePolicyAsync(node.Http, PolicyName, Devices.PerThingPolicy);
        return await Devices.CreateAsync(node.Http, NewThing(prefix), policy, active);
    }

    private async Task<(IMqttClient Client, MqttClientConnectResult Result)> ConnectAsync(DeviceCredentials? device, string clientId, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        var ca = await Devices.PlatformCaAsync(node.Http);
        var client = node.NewClient();
        var result = await client.ConnectAsync(Devices.Mtls(node, clientId, device?.Certificate, ca, version).Build());
        return (client, result);
    }

    private async Task SetStatusAsync(DeviceCredentials device, string status) =>
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/certificates/{device.CertificateId}?newStatus={status}", null));

    [Theory]
    [InlineData(MqttProtocolVersion.V311)]
    [InlineData(MqttProtocolVersion.V500)]
    public async Task ActiveCertificate_Connects_OverTlsWithAServerCertificateFromThePlatformCa(MqttProtocolVersion version)
    {
        var device = await DeviceAsync("active");

        var (client, result) = await ConnectAsync(device, device.ThingName, version);

        Assert.Equal(MqttClientConnectResultCode.Success, result.ResultCode);
        Assert.True(client.IsConnected);
        // The thing's connectivity is written after CONNACK (ClientConnectedHandler), so it is read until it shows.
        await Eventually.Get(() => node.GetThingAsync(device.ThingName), s => s?.Connectivity.Connected == true, "the thing to show the connection");
    }

    [Theory]
    [InlineData("INACTIVE")]
    [InlineData("REVOKED")]
    public async Task CertificateNotActive_IsRefusedAsNotAuthorized(string status)
    {
        var device = await DeviceAsync("refused");
        await SetStatusAsync(device, status);

        var (_, v5) = await ConnectAsync(device, device.ThingName);
        var (_, v311) = await ConnectAsync(device, device.ThingName, MqttProtocolVersion.V311);

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, v5.ResultCode);
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, v311.ResultCode);
    }

    [Fact]
    public async Task UnregisteredCertificate_AndNoCertificate_AreRefused()
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        using var self = new System.Security.Cryptography.X509Certificates.CertificateRequest("CN=stranger", key, System.Security.Cryptography.HashAlgorithmName.SHA256)
            .CreateSelfSigned(DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1));
        using var stranger = Devices.WithKey(self.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
        var (_, unknown) = await ConnectAsync(new DeviceCredentials("x", "x", "x", stranger), "stranger");
        var (_, none) = await ConnectAsync(null, "no-cert");

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, unknown.ResultCode);
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, none.ResultCode);
    }

    [Fact]
    public async Task ClientIdOtherThanTheThing_IsRefusedByThePolicy_WithAConnectFailedEvent()
    {
        var device = await DeviceAsync("cid");
        var watcher = await node.ConnectAsync("watcher-" + Guid.NewGuid().ToString("N")[..8]);   // development access on the plain port
        var events = new TaskCompletionSource<JsonNode>(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.ApplicationMessageReceivedAsync += e =>
        {
            events.TrySetResult(JsonNode.Parse(e.ApplicationMessage.ConvertPayloadToString())!);
            return Task.CompletedTask;
        };
        await watcher.SubscribeAsync("$aws/events/presence/connect_failed/impostor-" + device.ThingName);

        var (_, result) = await ConnectAsync(device, "impostor-" + device.ThingName);

        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, result.ResultCode);
        var failed = await events.Task.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Equal("connect_failed", (string)failed["eventType"]!);
        Assert.Equal("AUTHORIZATION_FAILED", (string)failed["connectFailureReason"]!);
        Assert.Equal(device.CertificateId, (string)failed["principalIdentifier"]!);
    }

    [Fact]
    public async Task RevokingTheCertificate_DisconnectsTheLiveSession()
    {
        var device = await DeviceAsync("revoke");
        var (client, _) = await ConnectAsync(device, device.ThingName);
        var closed = new TaskCompletionSource<MqttClientDisconnectedEventArgs>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += e =>
        {
            closed.TrySetResult(e);
            return Task.CompletedTask;
        };

        await SetStatusAsync(device, "REVOKED");

        var disconnected = await closed.Task.WaitAsync(TimeSpan.FromSeconds(1));
        Assert.Equal(MqttClientDisconnectReason.NotAuthorized, disconnected.Reason);
        await Eventually.True(async () => (await node.GetThingAsync(device.ThingName))!.Connectivity.DisconnectReason == "AUTH_ERROR", "the disconnect recorded as AUTH_ERROR");
    }

    [Fact]
    public async Task PerThingPolicy_KeepsADeviceToItsOwnTopics_Mqtt5()
    {
        var a = await DeviceAsync("a");
        var b = await DeviceAsync("b");
        var (clientA, _) = await ConnectAsync(a, a.ThingName);

        var own = await clientA.PublishAsync(Message($"devices/{a.ThingName}/temp"));
        var other = await clientA.PublishAsync(Message($"devices/{b.ThingName}/temp"));
        var otherShadow = await clientA.PublishAsync(Message($"$aws/things/{b.ThingName}/shadow/update", "{\"state\":{\"desired\":{\"on\":true}}}"));
        var subscriptions = await clientA.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter($"devices/{a.ThingName}/cmd")
            .WithTopicFilter($"devices/{b.ThingName}/cmd")
            .WithTopicFilter($"$aws/things/{b.ThingName}/shadow/update/accepted")
            .WithTopicFilter("devices/#")
            .Build());

        Assert.Equal(MqttClientPublishReasonCode.Success, own.ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, other.ReasonCode);
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, otherShadow.ReasonCode);
        Assert.Equal(
            [MqttClientSubscribeResultCode.GrantedQoS0, MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.NotAuthorized, MqttClientSubscribeResultCode.NotAuthorized],
            subscriptions.Items.Select(i => i.ResultCode));
        Assert.True(clientA.IsConnected);
        // The refused shadow update did not happen.
        var shadow = await node.Http.GetAsync($"/things/{b.ThingName}/shadow");
        Assert.Equal(System.Net.HttpStatusCode.NotFound, shadow.StatusCode);
    }

    [Fact]
    public async Task DeniedPublish_ClosesAnMqtt311Connection_AsAwsDoes()
    {
        var a = await DeviceAsync("a311");
        var (client, _) = await ConnectAsync(a, a.ThingName, MqttProtocolVersion.V311);
        var closed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        client.DisconnectedAsync += _ =>
        {
            closed.TrySetResult();
            return Task.CompletedTask;
        };

        try
        {
            await client.PublishAsync(Message("devices/somebody-else/temp"));
        }
        catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
        {
            // the connection went away before the PUBACK: that is the answer
        }

        await closed.Task.WaitAsync(TimeSpan.FromSeconds(10));
        await Eventually.True(async () => (await node.GetThingAsync(a.ThingName))!.Connectivity.DisconnectReason == "AUTH_ERROR", "AUTH_ERROR recorded");
    }

    [Fact]
    public async Task ReceiveIsCheckedOnEveryDelivery()
    {
        // A policy that lets the device subscribe to everything under news/ but receive only news/public/*.
        var policy = "receive-" + Guid.NewGuid().ToString("N")[..8];
        await Devices.CreatePolicyAsync(node.Http, policy, """
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
              {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/news/#"},
              {"Effect":"Allow","Action":"iot:Receive","Resource":"arn:aws:iot:*:*:topic/news/public/*"}
            ]}
            """);
        var device = await Devices.CreateAsync(node.Http, NewThing("rx"), policy);
        var (client, _) = await ConnectAsync(device, device.ThingName);
        var received = new List<string>();
        client.ApplicationMessageReceivedAsync += e =>
        {
            lock (received)
            {
                received.Add(e.ApplicationMessage.Topic);
            }

            return Task.CompletedTask;
        };
        await client.SubscribeAsync("news/#", MqttQualityOfServiceLevel.AtLeastOnce);
        var publisher = await node.ConnectAsync("news-" + Guid.NewGuid().ToString("N")[..8]);

        await publisher.PublishAsync(Message("news/secret/1"));
        await publisher.PublishAsync(Message("news/public/1"));

        await Eventually.True(() => { lock (received) { return Task.FromResult(received.Contains("news/public/1")); } }, "the allowed message");
        lock (received)
        {
            Assert.Equal(["news/public/1"], received);
        }
    }

    [Fact]
    public async Task DetachingThePolicy_TakesEffectOnTheLiveConnection()
    {
        var device = await DeviceAsync("detach");
        var (client, _) = await ConnectAsync(device, device.ThingName);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await client.PublishAsync(Message($"devices/{device.ThingName}/t"))).ReasonCode);

        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/target-policies/{PolicyName}", new StringContent(new JsonObject { ["target"] = device.CertificateArn }.ToJsonString(), Encoding.UTF8, "application/json")));

        // Re-read on every node in the background right after the change: within a moment, not minutes as on AWS.
        await Eventually.True(
            async () => (await client.PublishAsync(Message($"devices/{device.ThingName}/t"))).ReasonCode == MqttClientPublishReasonCode.NotAuthorized,
            "the publish denied", TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task ANewDefaultPolicyVersion_TakesEffectOnTheLiveConnection()
    {
        var policy = "versioned-" + Guid.NewGuid().ToString("N")[..8];
        await Devices.CreatePolicyAsync(node.Http, policy, """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:Connect","iot:Publish"],"Resource":"*"}]}""");
        var device = await Devices.CreateAsync(node.Http, NewThing("ver"), policy);
        var (client, _) = await ConnectAsync(device, device.ThingName);
        Assert.Equal(MqttClientPublishReasonCode.Success, (await client.PublishAsync(Message("news/x"))).ReasonCode);

        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policies/{policy}/version?setAsDefault=true", new StringContent(
            new JsonObject { ["policyDocument"] = """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}""" }.ToJsonString(), Encoding.UTF8, "application/json")));

        await Eventually.True(
            async () => (await client.PublishAsync(Message("news/x"))).ReasonCode == MqttClientPublishReasonCode.NotAuthorized,
            "the publish denied by version 2", TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task HttpsShadowApi_WithTheDeviceCertificate_FollowsItsPolicies()
    {
        var own = NewThing("https");
        var policy = "shadow-" + Guid.NewGuid().ToString("N")[..8];
        await Devices.CreatePolicyAsync(node.Http, policy, $$"""
            {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["iot:GetThingShadow","iot:UpdateThingShadow"],"Resource":"arn:aws:iot:*:*:thing/{{own}}"}]}
            """);
        var device = await Devices.CreateAsync(node.Http, own, policy);
        var ca = await Devices.PlatformCaAsync(node.Http);
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => Devices.ChainsTo(cert, ca) };
        handler.ClientCertificates.Add(device.Certificate);
        using var https = new HttpClient(handler) { BaseAddress = new Uri($"https://localhost:{node.HttpsPort}") };
        var update = new StringContent("""{"state":{"reported":{"on":true}}}""", Encoding.UTF8, "application/json");

        await ApiAssert.OkAsync(await https.PostAsync($"/things/{own}/shadow", update));
        Assert.Contains("\"on\":true", await (await https.GetAsync($"/things/{own}/shadow")).Content.ReadAsStringAsync(), StringComparison.Ordinal);
        await ApiAssert.ProblemAsync(await https.GetAsync($"/things/somebody-else/shadow"), System.Net.HttpStatusCode.Forbidden, "AccessDeniedException");
        await ApiAssert.ProblemAsync(await https.DeleteAsync($"/things/{own}/shadow"), System.Net.HttpStatusCode.Forbidden, "AccessDeniedException");
        await ApiAssert.ProblemAsync(await https.GetAsync("/api/things"), System.Net.HttpStatusCode.Unauthorized, "UnauthorizedException");   // the control plane wants an API key

        await SetStatusAsync(device, "INACTIVE");
        await ApiAssert.ProblemAsync(await https.GetAsync($"/things/{own}/shadow"), System.Net.HttpStatusCode.Unauthorized, "UnauthorizedException");
    }

    [Fact]
    public async Task HttpsPublish_WithTheDeviceCertificate_FollowsItsPolicies_AndReachesSubscribers()
    {
        // No client id over HTTP, so no thing variables (AWS): the policy names the topics.
        var thing = NewThing("hpub");
        var policy = "hpub-" + Guid.NewGuid().ToString("N")[..8];
        await Devices.CreatePolicyAsync(node.Http, policy, $$"""
            {"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/devices/{{thing}}/*"}]}
            """);
        var device = await Devices.CreateAsync(node.Http, thing, policy);
        var ca = await Devices.PlatformCaAsync(node.Http);
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, cert, _, _) => Devices.ChainsTo(cert, ca) };
        handler.ClientCertificates.Add(device.Certificate);
        using var https = new HttpClient(handler) { BaseAddress = new Uri($"https://localhost:{node.HttpsPort}") };
        var subscriber = await node.ConnectAsync("hsub-" + Guid.NewGuid().ToString("N")[..8]);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult($"{e.ApplicationMessage.Topic} {e.ApplicationMessage.ConvertPayloadToString()}");
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync("devices/#", MqttQualityOfServiceLevel.AtLeastOnce);

        await ApiAssert.OkAsync(await https.PostAsync($"/topics/devices/{device.ThingName}/temp?qos=1", new StringContent("21")));

        Assert.Equal($"devices/{device.ThingName}/temp 21", await received.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        await ApiAssert.ProblemAsync(await https.PostAsync("/topics/devices/somebody-else/temp?qos=1", new StringContent("1")), System.Net.HttpStatusCode.Forbidden, "AccessDeniedException");
        await ApiAssert.ProblemAsync(await https.PostAsync($"/topics/devices/{device.ThingName}/temp?retain=true", new StringContent("1")), System.Net.HttpStatusCode.Forbidden, "AccessDeniedException");
        await ApiAssert.ProblemAsync(await https.PostAsync("/topics/a/%2B/b", new StringContent("1")), System.Net.HttpStatusCode.Forbidden, "AccessDeniedException");
        await ApiAssert.ProblemAsync(await node.Http.PostAsync("/topics/a/%2B/b", new StringContent("1")), System.Net.HttpStatusCode.BadRequest, "InvalidRequestException");
        await ApiAssert.OkAsync(await node.Http.PostAsync("/topics/backend/news?qos=1", new StringContent("from a backend")));   // an API key
    }

    private static MqttApplicationMessage Message(string topic, string payload = "1") =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(Encoding.UTF8.GetBytes(payload)).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();
}
