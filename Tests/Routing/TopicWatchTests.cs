using System.Net;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Gateway.Routing;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Routing;

/// <summary>
/// <c>GET /api/watch</c>: the console's live view of a topic filter (its device page charts it). A watch on one node
/// sees what is published on every node, and ends with its request.
/// </summary>
[Collection(TwoNodeCollection.Name)]
public sealed class TopicWatchTests(TwoNodeFixture nodes)
{
    private static MqttApplicationMessage Message(string topic, byte[] payload) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();

    [Fact]
    public async Task AWatchOnNodeA_SeesMessagesPublishedOnBothNodes_AndItsRouteEndsWithIt()
    {
        var root = Ids.NewId("watch");
        var watches = nodes.A.App.Services.GetRequiredService<TopicWatches>();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        var response = await nodes.A.Http.SendAsync(new HttpRequestMessage(HttpMethod.Get, $"/api/watch?filter={root}/%2B/telemetry"), HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("text/event-stream", response.Content.Headers.ContentType?.MediaType);
        var reader = new StreamReader(await response.Content.ReadAsStreamAsync(timeout.Token));
        var (watching, announced) = await ServerSentEvents.NextAsync(reader).WaitAsync(timeout.Token);
        Assert.Equal("watching", watching);
        Assert.Equal($"{root}/+/telemetry", (string)JsonNode.Parse(announced)!["filter"]!);

        using var far = await nodes.B.ConnectAsync($"{root}-far");
        using var near = await nodes.A.ConnectAsync($"{root}-near");
        await far.PublishAsync(Message($"{root}/far/telemetry", """{"temp":21.5}"""u8.ToArray()));
        await far.PublishAsync(Message($"{root}/far/other", """{"temp":99}"""u8.ToArray()));   // not the filter
        await near.PublishAsync(Message($"{root}/near/telemetry", [0xff, 0x00, 0x01]));

        var seen = new List<JsonNode>();
        while (seen.Count < 2)
        {
            var (name, data) = await ServerSentEvents.NextAsync(reader).WaitAsync(timeout.Token);
            Assert.Equal("message", name);
            seen.Add(JsonNode.Parse(data)!);
        }

        var fromB = Assert.Single(seen, m => (string)m["topic"]! == $"{root}/far/telemetry");
        Assert.Equal(("""{"temp":21.5}""", $"{root}-far", 1), ((string)fromB["payload"]!, (string)fromB["clientId"]!, (int)fromB["qos"]!));
        var binary = Assert.Single(seen, m => (string)m["topic"]! == $"{root}/near/telemetry");
        Assert.Null(binary["payload"]);
        Assert.Equal(Convert.ToBase64String([0xff, 0x00, 0x01]), (string)binary["payloadBase64"]!);

        // The watch ends with its request: this node no longer holds it.
        Assert.Equal(1, watches.Count);
        reader.Dispose();
        response.Dispose();
        await Eventually.True(() => Task.FromResult(watches.Count == 0), "the watch to end with its request");
    }

    [Theory]
    [InlineData("")]
    [InlineData("a/%23/b")]
    [InlineData("a%2Bb")]
    [InlineData("%24share/g/a")]
    public async Task AFilterThatIsNotOne_IsRefusedWith400(string filter)
    {
        var response = await nodes.A.Http.GetAsync($"/api/watch?filter={filter}");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("InvalidRequestException", response.Headers.GetValues("x-amzn-ErrorType").Single());
    }

    [Fact]
    public async Task Watching_NeedsAKey()
    {
        using var anonymous = new HttpClient { BaseAddress = nodes.A.Http.BaseAddress };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("/api/watch?filter=a/b")).StatusCode);
    }

    [Fact]
    public void AWatcherThatFallsBehind_IsToldHowManyItMissed_AndHashDoesNotMatchDollarTopics()
    {
        var watches = new TopicWatches(TimeProvider.System);
        Assert.Null(watches.Start("x", capacity: 2, maxWatches: 0));
        var all = watches.Start("#", capacity: 2, maxWatches: 2)!;
        var one = watches.Start("a/+", capacity: 10, maxWatches: 2)!;
        Assert.Null(watches.Start("b", capacity: 2, maxWatches: 2));   // the node's limit

        for (var i = 0; i < 5; i++)
        {
            watches.Offer(new MqttApplicationMessageBuilder().WithTopic("a/b").WithPayload([(byte)i]).Build(), "c");
        }

        watches.Offer(new MqttApplicationMessageBuilder().WithTopic("$aws/things/t/shadow/update").Build(), "c");
        Assert.Equal(3, all.TakeDropped());
        Assert.Equal(0, all.TakeDropped());   // told once
        Assert.Equal(3, all.Missed);           // and logged with this total when the watch ends
        Assert.True(all.Messages.TryRead(out var first));
        Assert.Equal([0], first.Payload);   // the oldest are kept
        Assert.Equal(5, one.Messages.Count);

        watches.End(all);
        Assert.Equal(1, watches.Count);
        Assert.NotNull(watches.Start("c", capacity: 1, maxWatches: 2));
    }
}
