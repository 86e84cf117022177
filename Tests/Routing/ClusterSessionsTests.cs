using System.Collections.Concurrent;
using System.Net;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Routing;

/// <summary>One connection per client id across the cluster, and closing a connection from any node's API.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ClusterSessionsTests(TwoNodeFixture nodes)
{
    private static ConcurrentQueue<MqttClientDisconnectedEventArgs> WatchDisconnect(IMqttClient client)
    {
        var seen = new ConcurrentQueue<MqttClientDisconnectedEventArgs>();
        client.DisconnectedAsync += e =>
        {
            seen.Enqueue(e);
            return Task.CompletedTask;
        };
        return seen;
    }

    /// <summary>
    /// MQTTnet's server sends the DISCONNECT with the reason and closes the socket right after; a client sometimes
    /// sees the close before the packet. When the packet arrived, its reason must be right.
    /// </summary>
    private static void AssertReasonIfSent(MqttClientDisconnectedEventArgs e, MqttClientDisconnectReason expected)
    {
        if (e.ReasonString is not null || e.Reason != MqttClientDisconnectReason.NormalDisconnection)
        {
            Assert.True(e.Reason == expected || e.Exception is not null, $"disconnect reason {e.Reason}, expected {expected}");
        }
    }

    private static async Task<ConcurrentQueue<string>> WatchDisconnectEventsAsync(IMqttClient watcher, string clientId)
    {
        var events = new ConcurrentQueue<string>();
        watcher.ApplicationMessageReceivedAsync += e =>
        {
            events.Enqueue(e.ApplicationMessage.ConvertPayloadToString());
            return Task.CompletedTask;
        };
        await watcher.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"$aws/events/presence/disconnected/{clientId}").Build());
        return events;
    }

    [Fact]
    public async Task SameClientIdOnAnotherNode_TakesOver_TheOldConnectionIsClosedAsDuplicate()
    {
        var clientId = NewId("dev");
        var onA = await nodes.A.ConnectAsync(clientId);
        var disconnects = WatchDisconnect(onA);
        var firstSession = (await Eventually.Get(() => nodes.A.GetThingAsync(clientId), s => s is { Connectivity.Connected: true }, "the first connection"))!.Connectivity.SessionId;

        var watcher = await nodes.B.ConnectAsync(NewId("watch"));
        var events = await WatchDisconnectEventsAsync(watcher, clientId);

        var onB = await nodes.B.ConnectAsync(clientId);

        await Eventually.True(() => Task.FromResult(!disconnects.IsEmpty), "the connection on node A to be closed");
        AssertReasonIfSent(disconnects.First(), MqttClientDisconnectReason.SessionTakenOver);
        var ended = await Eventually.Get(() => Task.FromResult(events.FirstOrDefault(e => e.Contains(firstSession!, StringComparison.Ordinal))), e => e is not null, "the old session's disconnected event");
        Assert.Contains($"\"disconnectReason\":\"{DisconnectReasons.DuplicateClientId}\"", ended, StringComparison.Ordinal);
        Assert.True(onB.IsConnected);
        var status = await Eventually.Get(() => nodes.B.GetThingAsync(clientId), s => s is { Connectivity.Connected: true } && s.Connectivity.SessionId != firstSession, "the thing to show the new session");
        Assert.Contains(nodes.B.HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), status!.Connectivity.Node, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeleteConnection_OnAnyNode_ClosesTheClientWhereverItIs()
    {
        var clientId = NewId("dev");
        var device = await nodes.B.ConnectAsync(clientId);
        var disconnects = WatchDisconnect(device);
        await Eventually.Get(() => nodes.A.GetThingAsync(clientId), s => s is { Connectivity.Connected: true }, "the connection");

        var response = await nodes.A.Http.DeleteAsync($"/api/connections/{clientId}");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        await Eventually.True(() => Task.FromResult(!disconnects.IsEmpty), "the device to be disconnected");
        AssertReasonIfSent(disconnects.First(), MqttClientDisconnectReason.AdministrativeAction);
        var status = await Eventually.Get(() => nodes.A.GetThingAsync(clientId), s => s is { Connectivity.Connected: false }, "the disconnect to be recorded");
        Assert.Equal(DisconnectReasons.ApiInitiated, status!.Connectivity.DisconnectReason);

        var again = await nodes.A.Http.DeleteAsync($"/api/connections/{clientId}");
        Assert.Equal(HttpStatusCode.NotFound, again.StatusCode);
        Assert.Equal("application/problem+json", again.Content.Headers.ContentType?.MediaType);
    }

    [Theory]
    [InlineData("%24aws")]                 // "$aws": reserved
    [InlineData("a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a123456789a12345678")]   // 129 bytes
    public async Task DeleteConnection_WithBadInput_Is400(string path)
    {
        var response = await nodes.A.Http.DeleteAsync($"/api/connections/{path}");
        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains("InvalidRequestException", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task DeleteConnection_OfUnknownClient_Is404()
    {
        var response = await nodes.B.Http.DeleteAsync($"/api/connections/{NewId("nobody")}");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
    }
}
