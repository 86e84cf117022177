using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Sessions;

/// <summary>
/// The connection directory: one current connection per client id across the cluster, whatever the session kind, and
/// a clean session without a will kept there alone (no client-session grain activation), while a clean start still
/// ends a stored session.
/// </summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ConnectionDirectoryTests(TwoNodeFixture nodes)
{
    private static readonly string[] SampleIds = ["thing-1", "thing-2", "a", ""];

    [Fact]
    public async Task CleanConnectOnB_TakesOverACleanConnectionOnA_WithoutASessionGrain()
    {
        var clientId = NewId("clean");
        var onA = await nodes.A.ConnectAsync(clientId);
        await ConnectedOnAsync(clientId, nodes.A);

        var onB = await nodes.B.ConnectAsync(clientId);
        await Eventually.True(() => Task.FromResult(!onA.IsConnected), "the connection on A to be closed");
        Assert.True(onB.IsConnected);
        await ConnectedOnAsync(clientId, nodes.B);
        Assert.False(await SessionGrainActiveAsync(clientId), "a clean session without a will needs no session grain");

        await onB.DisconnectAsync();
        await Eventually.True(async () => (await nodes.A.Http.GetAsync($"/api/connections/{clientId}")).StatusCode == HttpStatusCode.NotFound, "the connection gone from the directory");
    }

    [Fact]
    public async Task PersistentOnA_ThenCleanOnB_EndsTheStoredSession_AndClosesA()
    {
        var clientId = NewId("p2c");
        var topic = $"cmd/{clientId}";
        var (onA, _, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await onA.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);

        var (onB, _, connack) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(clientId));
        Assert.False(connack.IsSessionPresent);
        await Eventually.True(() => Task.FromResult(!onA.IsConnected), "the persistent connection on A to be closed");
        Assert.Equal(HttpStatusCode.NotFound, (await nodes.A.Http.GetAsync($"/api/sessions/{clientId}")).StatusCode);
        await onB.DisconnectAsync();

        // The stored session is gone for good: a persistent connect later starts afresh, and nothing was queued for it.
        var publisher = await nodes.A.ConnectAsync(NewId("pub"));
        await publisher.PublishNumberedAsync(topic, [1]);
        var (again, inbox, resumed) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.False(resumed.IsSessionPresent);
        await publisher.PublishNumberedAsync(topic, [2]);
        await again.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        await publisher.PublishNumberedAsync(topic, [3]);
        Assert.Equal(["3"], await inbox.WaitAsync(topic, 1, "only what was published after the new subscription"));
    }

    [Fact]
    public async Task CleanOnA_ThenPersistentOnB_TakesTheCleanConnectionOver()
    {
        var clientId = NewId("c2p");
        var onA = await nodes.A.ConnectAsync(clientId);
        var (_, _, connack) = await SessionClients.ConnectAsync(nodes.B, nodes.B.Options(clientId).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.False(connack.IsSessionPresent);
        await Eventually.True(() => Task.FromResult(!onA.IsConnected), "the clean connection on A to be closed");
        await ConnectedOnAsync(clientId, nodes.B);
    }

    [Fact]
    public async Task ACleanConnectAfterAPersistentOne_GoesThroughTheSessionGrainOnce_ThenNoMore()
    {
        var clientId = NewId("settle");
        var (persistent, _, _) = await SessionClients.ConnectAsync(nodes.A, nodes.A.Options(clientId).Persistent(cleanStart: true, expirySeconds: 300));
        await persistent.DisconnectAndWaitOfflineAsync(nodes.A.Http, clientId);
        var directory = nodes.A.Cluster.ConnectionDirectoryOf(clientId);

        // Marked: the clean connect asks the session grain (which ends the stored session), and settles the mark.
        var first = new ClientConnection(NewId("s"), "node-x", DateTimeOffset.UnixEpoch);
        Assert.True((await directory.Claim(clientId, first, stored: false)).AskSession);
        await directory.Settled(clientId, first.SessionId);
        var second = new ClientConnection(NewId("s"), "node-x", DateTimeOffset.UnixEpoch);
        var claim = await directory.Claim(clientId, second, stored: false);
        Assert.False(claim.AskSession);
        Assert.Equal(first, claim.Previous! with { VersionNumber = 0 });   // the directory gave it its version

        // A settle of a connection that is no longer the current one leaves a newer mark alone.
        var third = new ClientConnection(NewId("s"), "node-x", DateTimeOffset.UnixEpoch);
        Assert.True((await directory.Claim(clientId, third, stored: true)).AskSession);
        await directory.Settled(clientId, second.SessionId);
        Assert.True((await directory.Claim(clientId, second, stored: false)).AskSession);
        await directory.Release([new ReleasedConnection(clientId, second.SessionId)]);
        Assert.Null(await directory.Get(clientId));
    }

    [Fact]
    public async Task Register_AddsWhatAPartitionLost_NeverOverANewerClaim()
    {
        var clientId = NewId("reg");
        var directory = nodes.B.Cluster.ConnectionDirectoryOf(clientId);
        var older = new ClientConnection(NewId("s"), "node-a", DateTimeOffset.UnixEpoch);
        await directory.Register([new LiveClient(clientId, older)]);
        Assert.Equal(older, await directory.Get(clientId));

        var newer = new ClientConnection(NewId("s"), "node-b", DateTimeOffset.UnixEpoch.AddSeconds(1));
        var claimed = await directory.Claim(clientId, newer, stored: false);
        Assert.Equal(older, claimed.Previous);
        newer = newer with { VersionNumber = claimed.VersionNumber };
        await directory.Register([new LiveClient(clientId, older)]);
        Assert.Equal(newer, await directory.Get(clientId));
        await directory.Release([new ReleasedConnection(clientId, older.SessionId)]);
        Assert.Equal(newer, await directory.Get(clientId));
    }

    [Fact]
    public async Task ASessionAdoptedUnmarked_IsMarked_SoACleanConnectEndsIt()
    {
        var clientId = NewId("mark");
        var directory = nodes.A.Cluster.ConnectionDirectoryOf(clientId);
        Assert.False((await directory.Claim(clientId, new ClientConnection(NewId("s"), "node-a", DateTimeOffset.UnixEpoch), stored: false)).AskSession);

        await directory.Mark([clientId]);
        Assert.True((await directory.Claim(clientId, new ClientConnection(NewId("s"), "node-a", DateTimeOffset.UnixEpoch), stored: false)).AskSession);
    }

    [Fact]
    public void PartitionOf_IsStable_AcrossProcessesAndReleases()
    {
        // A change here splits a mixed-version cluster's directory in two: these values are part of the wire contract.
        Assert.Equal(ConnectionDirectory.PartitionOf("thing-1"), ConnectionDirectory.PartitionOf(new string("thing-1".AsSpan())));
        // FNV-1a of the UTF-16 code units, modulo 64, worked out independently of the code under test.
        Assert.Equal([21L, 28L, 44L, 5L], SampleIds.Select(ConnectionDirectory.PartitionOf));
        Assert.All(Enumerable.Range(0, 1000).Select(i => ConnectionDirectory.PartitionOf($"device-{i}")), p => Assert.InRange(p, 0, ConnectionDirectory.Partitions - 1));
        Assert.Equal(ConnectionDirectory.Partitions, Enumerable.Range(0, 5000).Select(i => ConnectionDirectory.PartitionOf($"device-{i}")).Distinct().Count());
    }

    private static async Task ConnectedOnAsync(string clientId, NodeFixture node)
    {
        var nodeId = (await node.Http.GetFromJsonAsync<JsonObject>("/health"))!["nodeId"]!.GetValue<string>();
        await Eventually.True(async () =>
        {
            var response = await node.Http.GetAsync($"/api/connections/{clientId}");
            return response.IsSuccessStatusCode && (await response.Content.ReadFromJsonAsync<JsonObject>())!["nodeId"]!.GetValue<string>() == nodeId;
        }, $"the connection of {clientId} listed on its node");
    }

    private async Task<bool> SessionGrainActiveAsync(string clientId)
    {
        var management = nodes.A.Cluster.GetGrain<IManagementGrain>(0);
        var activations = await management.GetDetailedGrainStatistics();
        return activations.Any(a => a.GrainId.Type.ToString() == "client-session" && a.GrainId.Key.ToString() == clientId);
    }
}
