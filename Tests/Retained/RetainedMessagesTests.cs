using System.Collections.Concurrent;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Retained;

public abstract class RetainedTestsBase
{
    protected static MqttApplicationMessage Retained(string topic, string payload) =>
        new MqttApplicationMessageBuilder().WithTopic(topic).WithPayload(payload).WithRetainFlag().WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build();

    protected static async Task<ConcurrentQueue<MqttApplicationMessage>> SubscribeAsync(IMqttClient client, string filter)
    {
        var received = new ConcurrentQueue<MqttApplicationMessage>();
        client.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(filter, MqttQualityOfServiceLevel.AtLeastOnce).Build());
        return received;
    }

    /// <summary>Subscribes, then publishes a marker: whatever retained message the subscribe delivered came before it.</summary>
    protected static async Task<List<MqttApplicationMessage>> RetainedOnSubscribeAsync(NodeFixture node, string filter, string markerTopic)
    {
        var client = await node.ConnectAsync(NewId("late"));
        var received = await SubscribeAsync(client, filter);
        await client.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter(markerTopic).Build());
        await client.PublishAsync(new MqttApplicationMessageBuilder().WithTopic(markerTopic).WithPayload("m").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await Eventually.True(() => Task.FromResult(received.Any(m => m.Topic == markerTopic)), "the marker");
        return [.. received.Where(m => m.Topic != markerTopic)];
    }
}

[Collection(NodeCollection.Name)]
public sealed class RetainedMessagesTests(NodeFixture node) : RetainedTestsBase
{
    [Fact]
    public async Task RetainedMessage_IsDeliveredOnSubscribe_ToExactAndWildcardFilters_WithRetainFlag()
    {
        var root = NewId("ret");
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishAsync(Retained($"{root}/config", "v1"));
        await publisher.PublishAsync(Retained($"{root}/config", "v2"));   // replaces

        var exact = await RetainedOnSubscribeAsync(node, $"{root}/config", $"{root}-m1");
        var wildcard = await RetainedOnSubscribeAsync(node, $"{root}/#", $"{root}-m2");

        Assert.Equal("v2", Assert.Single(exact).ConvertPayloadToString());
        Assert.True(exact[0].Retain);
        Assert.Equal("v2", Assert.Single(wildcard).ConvertPayloadToString());
    }

    [Fact]
    public async Task EmptyRetainedPublish_ClearsIt()
    {
        var root = NewId("clr");
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishAsync(Retained($"{root}/state", "on"));
        await publisher.PublishAsync(Retained($"{root}/state", ""));

        Assert.Empty(await RetainedOnSubscribeAsync(node, $"{root}/state", $"{root}-m"));
        var response = await node.Http.GetAsync($"/api/retainedMessage/{Uri.EscapeDataString($"{root}/state")}");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }

    [Fact]
    public async Task Api_ListsAndGetsRetainedMessages_AsAws()
    {
        var root = NewId("api");
        var publisher = await node.ConnectAsync(NewId("pub"));
        await publisher.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{root}/a").WithPayload("hello").WithRetainFlag()
            .WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).WithUserProperty("site", new ReadOnlyMemory<byte>("lab"u8.ToArray())).Build());
        await publisher.PublishAsync(Retained($"{root}/b", "world!"));

        // GET /api/retainedMessage/{topic}, topic URL-encoded as AWS requires (slashes as-is work too).
        var one = await node.Http.GetFromJsonAsync<JsonElement>($"/api/retainedMessage/{Uri.EscapeDataString($"{root}/a")}");
        Assert.Equal($"{root}/a", one.GetProperty("topic").GetString());
        Assert.Equal("hello", Encoding.UTF8.GetString(Convert.FromBase64String(one.GetProperty("payload").GetString()!)));
        Assert.Equal(1, one.GetProperty("qos").GetInt32());
        Assert.InRange(one.GetProperty("lastModifiedTime").GetInt64(), DateTimeOffset.UtcNow.AddMinutes(-1).ToUnixTimeMilliseconds(), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        var properties = JsonDocument.Parse(Convert.FromBase64String(one.GetProperty("userProperties").GetString()!)).RootElement;
        Assert.Equal("lab", properties[0].GetProperty("site").GetString());
        var slashes = await node.Http.GetFromJsonAsync<JsonElement>($"/api/retainedMessage/{root}/b");
        Assert.Equal($"{root}/b", slashes.GetProperty("topic").GetString());

        // ListRetainedMessages pages with nextToken.
        var seen = new List<JsonElement>();
        string? token = null;
        do
        {
            var page = await node.Http.GetFromJsonAsync<JsonElement>($"/api/retainedMessage?maxResults=1{(token is null ? "" : $"&nextToken={Uri.EscapeDataString(token)}")}");
            seen.AddRange(page.GetProperty("retainedTopics").EnumerateArray());
            token = page.TryGetProperty("nextToken", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        }
        while (token is not null);
        var mine = seen.Where(t => t.GetProperty("topic").GetString()!.StartsWith(root, StringComparison.Ordinal)).ToList();
        Assert.Equal([$"{root}/a", $"{root}/b"], mine.Select(t => t.GetProperty("topic").GetString()));
        Assert.Equal(6, mine[1].GetProperty("payloadSize").GetInt64());
    }

    [Theory]
    [InlineData("/api/retainedMessage?maxResults=0", HttpStatusCode.BadRequest)]
    [InlineData("/api/retainedMessage?maxResults=201", HttpStatusCode.BadRequest)]
    [InlineData("/api/retainedMessage?nextToken=%25%25%25", HttpStatusCode.BadRequest)]
    [InlineData("/api/retainedMessage/no/such/topic", HttpStatusCode.NotFound)]
    public async Task Api_BadInput_GetsProblemJson(string path, HttpStatusCode expected)
    {
        var response = await node.Http.GetAsync(path);
        Assert.Equal(expected, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
    }
}

[Collection(TwoNodeCollection.Name)]
public sealed class RetainedAcrossNodesTests(TwoNodeFixture nodes) : RetainedTestsBase
{
    [Fact]
    public async Task RetainedOnA_IsDeliveredToALaterSubscriberOnB_RightAfterPuback()
    {
        var root = NewId("xret");
        var publisher = await nodes.A.ConnectAsync(NewId("pub"));
        await publisher.PublishAsync(Retained($"{root}/fw", "1.2.3"));

        var onB = await RetainedOnSubscribeAsync(nodes.B, $"{root}/+", $"{root}-m");

        Assert.Equal("1.2.3", Assert.Single(onB).ConvertPayloadToString());
        var api = await nodes.B.Http.GetFromJsonAsync<JsonElement>($"/api/retainedMessage/{root}/fw");
        Assert.Equal("1.2.3", Encoding.UTF8.GetString(Convert.FromBase64String(api.GetProperty("payload").GetString()!)));
    }

    [Fact]
    public async Task ClearedOnB_IsGoneOnA()
    {
        var root = NewId("xclr");
        var onA = await nodes.A.ConnectAsync(NewId("pubA"));
        await onA.PublishAsync(Retained($"{root}/s", "x"));
        var onB = await nodes.B.ConnectAsync(NewId("pubB"));
        await onB.PublishAsync(Retained($"{root}/s", ""));

        Assert.Empty(await RetainedOnSubscribeAsync(nodes.A, $"{root}/s", $"{root}-m"));
    }
}
