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
}
