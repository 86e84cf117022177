using Microsoft.Extensions.Logging.Abstractions;
using OrleansIot.Gateway.Sessions;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Sessions;

/// <summary>A node's list of hosted client ids, written in shards: what an adopter reads, whichever release wrote it.</summary>
[Collection(ClusterCollection.Name)]
public sealed class HostListTests(ClusterFixture cluster)
{
    [Fact]
    public async Task IsSplitIntoShards_AndReadWhole_WithAnEarlierReleasesList()
    {
        var nodeId = NewId("node");
        var list = new HostList(cluster.Grains, NullLogger<HostList>.Instance);
        var clients = Enumerable.Range(0, 200).Select(i => $"{nodeId}-c{i}").ToList();
        foreach (var clientId in clients)
        {
            list.Change(clientId, new HostedSession(clientId, "s1", Online: true, 5));
        }

        await list.FlushAsync(nodeId);
        // A node of an earlier release wrote one list under its node id; a shard's newer entry wins over it.
        await cluster.Grains.GetGrain<INodeSessionsGrain>(nodeId).Update(
            [new HostedSession("legacy-only", "s0", Online: false, 4), new HostedSession(clients[0], "s0", Online: false, 4)], []);

        list.Change(clients[1], null);
        await list.FlushAsync(nodeId);
        var read = await HostList.ReadAsync(cluster.Grains, nodeId);
        Assert.Equal(200, read.Count);
        Assert.Contains(new HostedSession("legacy-only", "s0", Online: false, 4), read);
        Assert.Contains(new HostedSession(clients[0], "s1", Online: true, 5), read);
        Assert.DoesNotContain(read, e => e.ClientId == clients[1]);

        // Each client id sits in the shard of its connection-directory partition, and nowhere else.
        var shard = ConnectionDirectory.PartitionOf(clients[2]);
        Assert.Contains(new HostedSession(clients[2], "s1", Online: true, 5), await cluster.Grains.GetGrain<INodeSessionsGrain>($"{nodeId}#{shard}").Get());
        Assert.Equal(1, (await Task.WhenAll(Enumerable.Range(0, ConnectionDirectory.Partitions)
            .Select(p => cluster.Grains.GetGrain<INodeSessionsGrain>($"{nodeId}#{p}").Get())))
            .Count(l => l.Any(e => e.ClientId == clients[2])));

        await HostList.ClearAsync(cluster.Grains, nodeId);
        Assert.Equal(200, (await HostList.ReadAsync(cluster.Grains, nodeId)).Count);   // still readable for a while after adoption
    }

    [Fact]
    public async Task CleanConnectionsWaitForTheFullWrite_UnlessTheirShardIsWrittenAnyway_SessionsGoAtOnce()
    {
        var nodeId = NewId("node");
        var list = new HostList(cluster.Grains, NullLogger<HostList>.Instance);
        var persistent = $"{nodeId}-p";
        var sameShard = Enumerable.Range(0, 10_000).Select(i => $"{nodeId}-s{i}").First(id => ConnectionDirectory.PartitionOf(id) == ConnectionDirectory.PartitionOf(persistent));
        var otherShard = Enumerable.Range(0, 10_000).Select(i => $"{nodeId}-o{i}").First(id => ConnectionDirectory.PartitionOf(id) != ConnectionDirectory.PartitionOf(persistent));
        list.Change(persistent, new HostedSession(persistent, "p1", Online: true, 5));
        list.Change(sameShard, new HostedSession(sameShard, "s1", Online: true, 4), urgent: false);
        list.Change(otherShard, new HostedSession(otherShard, "o1", Online: true, 4), urgent: false);

        await list.FlushAsync(nodeId, all: false);
        Assert.Equal([persistent, sameShard], (await HostList.ReadAsync(cluster.Grains, nodeId)).Select(e => e.ClientId).Order());

        await list.FlushAsync(nodeId, all: false);
        Assert.DoesNotContain(otherShard, (await HostList.ReadAsync(cluster.Grains, nodeId)).Select(e => e.ClientId));

        // A lazy change after an urgent one of the same client id stays urgent.
        list.Change(otherShard, null);
        list.Change(otherShard, new HostedSession(otherShard, "o2", Online: true, 4), urgent: false);
        await list.FlushAsync(nodeId, all: false);
        Assert.Contains(new HostedSession(otherShard, "o2", Online: true, 4), await HostList.ReadAsync(cluster.Grains, nodeId));

        list.Change(sameShard, null, urgent: false);
        await list.FlushAsync(nodeId, all: true);
        Assert.Equal([otherShard, persistent], (await HostList.ReadAsync(cluster.Grains, nodeId)).Select(e => e.ClientId).Order());
    }
}
