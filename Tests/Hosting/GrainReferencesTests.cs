using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Hosting;

/// <summary>The hot paths' grain references (resolved once per interface) are the references Orleans' own GetGrain makes.</summary>
[Collection(ClusterCollection.Name)]
public sealed class GrainReferencesTests(ClusterFixture cluster)
{
    [Fact]
    public async Task AStringKeyedReference_IsOrleansOwn_OnTheFirstCallAndAfter()
    {
        for (var i = 0; i < 3; i++)
        {
            var key = NewId("thing");
            var ours = cluster.Grains.Reference<IThingGrain>(key);
            AssertSame(cluster.Grains.GetGrain<IThingGrain>(key), ours);
            Assert.Null(await cluster.Grains.Reference<IClientSessionGrain>(key).GetSession());
        }
    }

    [Fact]
    public async Task AnIntegerKeyedReference_IsOrleansOwn_OnTheFirstCallAndAfter()
    {
        for (var partition = 0; partition < 3; partition++)
        {
            var ours = cluster.Grains.Reference<IConnectionDirectoryGrain>(partition);
            AssertSame(cluster.Grains.GetGrain<IConnectionDirectoryGrain>(partition), ours);
            Assert.Null(await ours.Get(NewId("nobody")));
        }
    }

    private static void AssertSame(object orleans, object ours)
    {
        Assert.Equal(((GrainReference)orleans).GrainId, ((GrainReference)ours).GrainId);
        Assert.Equal(((GrainReference)orleans).InterfaceType, ((GrainReference)ours).InterfaceType);
        Assert.Equal(orleans.GetType(), ours.GetType());
    }
}
