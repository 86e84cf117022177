using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Hosting;

/// <summary>
/// The node's start order is its services' registration order (and its stop order the reverse): the silo first, then
/// telemetry and presence, routing and sessions, security, and the MQTT server last, so a device that connects finds
/// everything it needs, and at shutdown its disconnect and last publishes are still written.
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class GatewayCompositionTests(NodeFixture node)
{
    [Fact]
    public void HostedServices_StartInTheOrderTheGatewayNeeds()
    {
        var order = node.App.Services.GetServices<IHostedService>().Select(s => s.GetType().Name).ToList();
        int At(string name)
        {
            var index = order.FindIndex(n => n.Contains(name, StringComparison.Ordinal));
            Assert.True(index >= 0, $"{name} is not a hosted service: {string.Join(", ", order)}");
            return index;
        }

        var expected = new[] { "SiloHostedService", "TelemetryPublisher", "LiveConnections", "ClusterRouter", "SessionHost", "ApiKeyAuthenticator", "ServerCertificateSource", "MqttHostedServer", "ListenerBanner" };
        var positions = expected.Select(At).ToList();
        Assert.True(positions.SequenceEqual(positions.Order()), $"start order: {string.Join(", ", order)}");
    }
}
