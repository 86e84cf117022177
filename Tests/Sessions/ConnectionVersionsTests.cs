using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Sessions;

/// <summary>
/// The connection directory hands out the lifecycle events' <c>versionNumber</c> and lets a gone node's connections go:
/// what a backend ordering presence events, and an operator reading a thing's status after a node's death, rely on.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ConnectionVersionsTests(ClusterFixture fixture)
{
    [Fact]
    public async Task Claims_HandOutVersionNumbersThatGrow_AndAreNotBelowTheClock()
    {
        var clientId = Ids.NewId("dev");
        var directory = fixture.Grains.ConnectionDirectoryOf(clientId);
        var before = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();

        var versions = new List<long>();
        for (var i = 0; i < 5; i++)
        {
            // Claims within the same millisecond (a takeover storm) still get growing numbers.
            versions.Add((await directory.Claim(clientId, new ClientConnection($"s{i}", "node-a/1", DateTimeOffset.UtcNow), stored: false)).VersionNumber);
        }

        Assert.True(versions[0] >= before, $"{versions[0]} is below the clock's {before}");
        Assert.Equal(versions.Order(), versions);
        Assert.Equal(5, versions.Distinct().Count());
        Assert.Equal(versions[^1], (await directory.Get(clientId))!.VersionNumber);
    }

    [Fact]
    public async Task ReleaseNode_TakesOutTheGoneNodesCurrentConnections_AndNoOthers()
    {
        // Three client ids of one partition.
        var first = Ids.NewId("dev");
        var partition = ConnectionDirectory.PartitionOf(first);
        var ids = new List<string> { first };
        while (ids.Count < 3)
        {
            var id = Ids.NewId("dev");
            if (ConnectionDirectory.PartitionOf(id) == partition)
            {
                ids.Add(id);
            }
        }

        var directory = fixture.Grains.GetGrain<IConnectionDirectoryGrain>(partition);
        var gone = $"gone-{Guid.NewGuid():N}/1";
        var alive = $"alive-{Guid.NewGuid():N}/1";
        var at = DateTimeOffset.UtcNow;
        var lost = await directory.Claim(ids[0], new ClientConnection("a", gone, at, "10.0.0.1:1", 4), stored: false);
        await directory.Claim(ids[1], new ClientConnection("b", alive, at), stored: false);
        await directory.Claim(ids[2], new ClientConnection("c1", gone, at), stored: false);
        await directory.Claim(ids[2], new ClientConnection("c2", alive, at), stored: false);   // moved before the node died

        var released = await directory.ReleaseNode(gone);

        var only = Assert.Single(released);
        Assert.Equal(ids[0], only.ClientId);
        Assert.Equal(new ClientConnection("a", gone, at, "10.0.0.1:1", 4, lost.VersionNumber), only.Connection);
        Assert.Null(await directory.Get(ids[0]));
        Assert.Equal("b", (await directory.Get(ids[1]))!.SessionId);
        Assert.Equal("c2", (await directory.Get(ids[2]))!.SessionId);
        Assert.Empty(await directory.ReleaseNode(gone));
    }
}
