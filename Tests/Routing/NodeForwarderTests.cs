using System.Diagnostics.Metrics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Gateway.Routing;
using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Routing;
using OrleansIot.Grains.Abstractions.Sessions;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Routing;

/// <summary>
/// A forwarder to a node that is gone hands back everything it may not have delivered, including what a publish hands
/// it after it was stopped (the publish matched the node's routes just before they were removed): nothing acknowledged
/// falls between the router's table and the dead node's replay.
/// </summary>
[Trait("Category", "Unit")]
public sealed class NodeForwarderTests
{
    /// <summary>A node that died: every call fails; or, with <see cref="Up"/>, one that takes the batches it is sent.</summary>
    private sealed class DeadNode : IRouteNode
    {
        public volatile bool Up;
        public int Delivered;

        public Task Deliver(ForwardedBatch batch)
        {
            if (!Up)
            {
                throw new TimeoutException("gone");
            }

            Interlocked.Add(ref Delivered, batch.Messages.Count);
            return Task.CompletedTask;
        }

        public Task ApplyRoutes(RouteUpdate update) => throw new TimeoutException("gone");
        public Task<RouteUpdate> GetRoutes() => throw new TimeoutException("gone");
        public Task<bool> DisconnectClient(string clientId, string sessionId, string reason, DisconnectOptions options) => throw new TimeoutException("gone");
        public Task ReleaseSession(string clientId, string newSessionId) => throw new TimeoutException("gone");
        public Task DeliverToClient(string clientId, IReadOnlyList<QueuedMessage> messages) => throw new TimeoutException("gone");
        public Task ApplyRetained(RetainedChange change) => throw new TimeoutException("gone");
        public Task<IReadOnlyList<RetainedChange>> GetRetained() => throw new TimeoutException("gone");
        public Task AccessChanged(AccessChange change) => throw new TimeoutException("gone");
        public Task RulesChanged() => throw new TimeoutException("gone");
        public Task<ConnectionDelivery?> GetDelivery(string clientId, string sessionId) => throw new TimeoutException("gone");
        public Task<bool> AdoptNode(string stoppingNodeId) => throw new TimeoutException("gone");
        public Task Drained(string stoppingNodeId) => throw new TimeoutException("gone");
    }

    private static ForwardedMessage Message(string topic, int qos) =>
        new(topic, [1], qos, "publisher", null, null, null, null, 0, 0, MessageId: Guid.NewGuid());

    [Fact]
    public async Task Stopped_ItReturnsWhatItHeld_AndHandsLateQos1MessagesOn_NotQos0()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new GatewayMetrics(services.GetRequiredService<IMeterFactory>());
        await using var forwarder = new NodeForwarder("self", new RouteNodeEntry("dead", new DeadNode()), new RoutingOptions(), TimeProvider.System, metrics, NullLogger.Instance);
        var before = Message("t/1", 1);
        forwarder.Enqueue(before);

        var late = new List<ForwardedMessage>();
        var undelivered = await forwarder.StopAsync(late.Add);
        var after = Message("t/2", 1);
        forwarder.Enqueue(after);
        forwarder.Enqueue(Message("t/3", 0));   // at most once: not replayed

        Assert.Equal([before.MessageId], undelivered.Select(m => m.MessageId));
        Assert.Equal([after.MessageId], late.Select(m => m.MessageId));
    }

    /// <summary>
    /// What was delivered to a node is kept to replay if it dies, until that node says it stopped and handed all of it
    /// on (<see cref="IRouteNode.Drained"/>): then only what it did not take (refused from then on) is replayed.
    /// </summary>
    [Fact]
    public async Task TheOtherNodeDrained_WhatItTookIsNotReplayed_WhatItRefusedIs()
    {
        using var services = new ServiceCollection().AddMetrics().BuildServiceProvider();
        var metrics = new GatewayMetrics(services.GetRequiredService<IMeterFactory>());
        var node = new DeadNode { Up = true };
        await using var forwarder = new NodeForwarder("self", new RouteNodeEntry("stopping", node), new RoutingOptions(), TimeProvider.System, metrics, NullLogger.Instance);
        forwarder.Enqueue(Message("t/1", 1));
        forwarder.Enqueue(Message("t/2", 1));
        // The node counts a batch when it takes it; the forwarder keeps it for replay once the call returned.
        var forgotten = 0;
        await Eventually.True(() => Task.FromResult((forgotten += forwarder.ForgetSent()) == 2), "both delivered, and kept for replay until forgotten");
        Assert.Equal(2, Volatile.Read(ref node.Delivered));
        node.Up = false;   // drained: it takes no more
        var refused = Message("t/3", 1);
        forwarder.Enqueue(refused);   // queued or failing when stopped: kept either way

        var undelivered = await forwarder.StopAsync(_ => { });
        Assert.Equal([refused.MessageId], undelivered.Select(m => m.MessageId));
    }
}
