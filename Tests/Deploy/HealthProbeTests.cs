using OrleansIot.Silo.Hosting;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Deploy;

/// <summary><c>OrleansIot.Silo probe URL</c>: the container's health check (the runtime image has no curl).</summary>
[Collection(NodeCollection.Name)]
public sealed class HealthProbeTests(NodeFixture node)
{
    [Fact]
    public async Task AReadyNode_Passes_AClosedPortFails_AndANonUrlIsAUsageError()
    {
        Assert.Equal(0, await HealthProbe.RunAsync([$"{node.Http.BaseAddress}readyz"]));
        Assert.Equal(1, await HealthProbe.RunAsync([$"http://127.0.0.1:{FreePorts.Next()}/readyz"]));
        Assert.Equal(1, await HealthProbe.RunAsync([$"{node.Http.BaseAddress}no-such-page"]));
        Assert.Equal(2, await HealthProbe.RunAsync(["not a url"]));
    }
}
