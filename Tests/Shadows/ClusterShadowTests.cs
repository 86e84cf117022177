using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;

namespace OrleansIot.Tests.Shadows;

/// <summary>Device on one node, application on the other: every shadow message crosses nodes.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ClusterShadowTests(TwoNodeFixture nodes)
{
    [Fact]
    public async Task DeviceOnA_ApplicationOnB_ExchangeDesiredAndReportedState()
    {
        var thing = Ids.NewId("pump");
        var prefix = $"$aws/things/{thing}/shadow";
        var device = await nodes.A.ConnectAsync(thing);
        var deviceInbox = Inbox.Of(device);
        await device.SubscribeAsync($"{prefix}/update/delta", MqttQualityOfServiceLevel.AtLeastOnce);
        var app = await nodes.B.ConnectAsync(thing + "-app");
        var appInbox = Inbox.Of(app);
        await app.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter($"{prefix}/update/accepted", MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter($"{prefix}/update/documents", MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());

        await app.PublishStringAsync($"{prefix}/update", "{\"state\":{\"desired\":{\"rpm\":1200}}}", MqttQualityOfServiceLevel.AtLeastOnce);
        var delta = JsonNode.Parse((await deviceInbox.WaitAsync($"{prefix}/update/delta", 1, "the delta on node A"))[0])!;
        await device.PublishStringAsync($"{prefix}/update", "{\"state\":{\"reported\":{\"rpm\":1200}}}", MqttQualityOfServiceLevel.AtLeastOnce);
        var documents = await appInbox.WaitAsync($"{prefix}/update/documents", 2, "two documents messages on node B");

        Assert.Equal(1200, (int)delta["state"]!["rpm"]!);
        var last = JsonNode.Parse(documents[1])!;
        Assert.Equal(1200, (int)last["current"]!["state"]!["reported"]!["rpm"]!);
        Assert.Equal(1, (long)last["previous"]!["version"]!);
        Assert.Equal(2, (await appInbox.WaitAsync($"{prefix}/update/accepted", 2, "both accepted messages")).Count);
        // Either node's HTTP API sees the same shadow.
        var fromA = JsonNode.Parse(await nodes.A.Http.GetStringAsync($"/things/{thing}/shadow"))!;
        var fromB = JsonNode.Parse(await nodes.B.Http.GetStringAsync($"/things/{thing}/shadow"))!;
        Assert.Equal(2, (long)fromA["version"]!);
        Assert.Equal(2, (long)fromB["version"]!);
        Assert.Null(fromB["state"]!["delta"]);
    }
}
