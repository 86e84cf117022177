using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Security;

/// <summary>A node whose development access (anonymous, and one development user) is governed by a named policy.</summary>
public sealed class DevelopmentPolicyNodeFixture : NodeFixture
{
    public string PolicyName { get; } = "dev-" + Guid.NewGuid().ToString("N")[..8];

    protected override IEnumerable<string> Settings => [$"Iot:Auth:DevelopmentPolicy={PolicyName}", "Iot:Auth:Users:alice=wonderland"];
}

/// <summary>
/// <c>Iot:Auth:DevelopmentPolicy</c>: development access (anonymous, development users) under a policy managed with the
/// policy API, so a developer tries production policies on a laptop; refused, with a reason naming the policy, until
/// it exists.
/// </summary>
public sealed class DevelopmentPolicyTests(DevelopmentPolicyNodeFixture node) : IClassFixture<DevelopmentPolicyNodeFixture>
{
    [Fact]
    public async Task DevelopmentAccess_IsRefusedUntilThePolicyExists_ThenGovernedByIt()
    {
        // 1. The policy does not exist yet: refused, and told why.
        var early = node.NewClient();
        var refused = await early.ConnectAsync(node.Options(NewId("dev-early")).Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, refused.ResultCode);
        Assert.Contains(node.PolicyName, refused.ReasonString, StringComparison.Ordinal);
        Assert.Contains("Iot:Auth:DevelopmentPolicy", refused.ReasonString, StringComparison.Ordinal);

        // 2. The policy: clients named dev-* may connect, and use dev/* topics only.
        await CreatePolicyAsync("""
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/dev-*"},
              {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/dev/${iot:ClientId}/*"},
              {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/dev/${iot:ClientId}/*"}]}
            """);

        var clientId = NewId("dev-ok");
        var client = await node.ConnectAsync(clientId);
        var received = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.TrySetResult(e.ApplicationMessage.Topic);
            return Task.CompletedTask;
        };
        var subscribed = await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter($"dev/{clientId}/+", MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter("other/#", MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());
        Assert.Equal(MqttClientSubscribeResultCode.GrantedQoS1, subscribed.Items.First().ResultCode);
        Assert.Equal(MqttClientSubscribeResultCode.NotAuthorized, subscribed.Items.Last().ResultCode);

        var allowed = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"dev/{clientId}/hello").WithPayload("hi").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MqttClientPublishReasonCode.Success, allowed.ReasonCode);
        Assert.Equal($"dev/{clientId}/hello", await received.Task.WaitAsync(TimeSpan.FromSeconds(10)));
        var denied = await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"dev/someone-else/hello").WithPayload("no").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, denied.ReasonCode);

        // 3. A client id the policy does not allow to connect, anonymous or as a development user.
        var stranger = await node.NewClient().ConnectAsync(node.Options(NewId("stranger")).Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, stranger.ResultCode);
        Assert.Contains("iot:Connect", stranger.ReasonString, StringComparison.Ordinal);
        var alice = await node.NewClient().ConnectAsync(node.Options(NewId("alice"), MqttProtocolVersion.V311).WithCredentials("alice", "wonderland").Build());
        Assert.Equal(MqttClientConnectResultCode.NotAuthorized, alice.ResultCode);
        var aliceAsDev = await node.NewClient().ConnectAsync(node.Options(NewId("dev-alice")).WithCredentials("alice", "wonderland").Build());
        Assert.Equal(MqttClientConnectResultCode.Success, aliceAsDev.ResultCode);
    }

    private async Task CreatePolicyAsync(string document)
    {
        var body = new JsonObject { ["policyDocument"] = document };
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policies/{node.PolicyName}", ClaimRig.Body(body)));
    }
}
