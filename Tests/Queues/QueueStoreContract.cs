using System.Text;
using OrleansIot.Grains.Queues;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Queues;

/// <summary>What both queue stores must do: ids stored once, oldest first, visibility, receipts, counts.</summary>
public abstract class QueueStoreContract
{
    protected abstract Task<IQueueStore> StoreAsync();

    private static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    [Fact]
    public async Task Messages_AreReceivedOldestFirst_HiddenWhileInFlight_AndDeletedOnlyWithTheLatestReceipt()
    {
        var store = await StoreAsync();
        var queue = Ids.NewId("q");
        var ids = Enumerable.Range(0, 3).Select(_ => Guid.NewGuid()).ToList();
        await store.SendAsync([.. ids.Select((id, i) => new QueueItem(queue, id, Bytes($"m{i}")))]);
        await store.SendAsync([new QueueItem(queue, ids[0], Bytes("m0 again"))]);       // the same id: stored once

        Assert.Equal(new(3, 0), await store.StatsAsync(queue));
        // Long enough to check the counts under a loaded machine; short enough to wait for its end below.
        var first = await store.ReceiveAsync(queue, 2, TimeSpan.FromSeconds(2));
        Assert.Equal(["m0", "m1"], first.Select(m => Encoding.UTF8.GetString(m.Body)));
        Assert.Equal(ids[..2], first.Select(m => m.MessageId));
        var second = await store.ReceiveAsync(queue, 10, TimeSpan.FromSeconds(30));
        Assert.Equal(["m2"], second.Select(m => Encoding.UTF8.GetString(m.Body)));
        Assert.Equal(new(0, 3), await store.StatsAsync(queue));
        Assert.Equal(1, await store.DeleteAsync(queue, [first[0].ReceiptHandle, "not-a-receipt"]));

        // m1's visibility ends: it comes back with a new receipt; the old one deletes nothing.
        var again = await Eventually.Get(() => store.ReceiveAsync(queue, 10, TimeSpan.FromSeconds(30)), m => m.Count > 0, "m1 again");
        Assert.Equal(["m1"], again.Select(m => Encoding.UTF8.GetString(m.Body)));
        Assert.Equal(2, again[0].ReceiveCount);
        Assert.Equal(0, await store.DeleteAsync(queue, [first[1].ReceiptHandle]));
        Assert.Equal(2, await store.DeleteAsync(queue, [again[0].ReceiptHandle, second[0].ReceiptHandle]));
        Assert.Equal(new(0, 0), await store.StatsAsync(queue));
        Assert.Empty(await store.ReceiveAsync(Ids.NewId("empty"), 10, TimeSpan.FromSeconds(1)));
    }
}

[Collection(ClusterCollection.Name)]
public sealed class MemoryQueueStoreTests(ClusterFixture cluster) : QueueStoreContract
{
    protected override Task<IQueueStore> StoreAsync() => Task.FromResult<IQueueStore>(new MemoryQueueStore(cluster.Grains));
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresQueueStoreTests(PostgresServer postgres) : QueueStoreContract
{
    protected override async Task<IQueueStore> StoreAsync() => new PostgresQueueStore(await postgres.CreateMigratedDataSourceAsync("queues"));
}
