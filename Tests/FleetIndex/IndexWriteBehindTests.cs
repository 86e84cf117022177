using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.FleetIndex;

namespace OrleansIot.Tests.FleetIndex;

/// <summary>
/// The shadow sections a node writes behind: one write per thing per round (its latest section), nothing lost when a
/// round fails (a newer section still wins), and a round on the clock's interval without any search asking.
/// </summary>
public sealed class IndexWriteBehindTests
{
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    [Fact]
    public async Task ARound_WritesEachThingsLatestSectionOnce()
    {
        var store = new RecordingStore();
        await using var behind = New(store, new FakeTimeProvider());
        for (var v = 1; v <= 5; v++)
        {
            behind.Enqueue("lamp", Section(v));
        }

        behind.Enqueue("fan", Section(9));
        behind.Enqueue("gone", (IndexSection?)null);
        Assert.Equal(3, behind.Pending);

        await behind.FlushAsync();

        Assert.Equal(0, behind.Pending);
        Assert.Equal(3, store.Writes.Count);
        Assert.Equal(Section(5), store.Writes.Single(w => w.Thing == "lamp").Section);
        Assert.Equal(Section(9), store.Writes.Single(w => w.Thing == "fan").Section);
        Assert.Null(store.Writes.Single(w => w.Thing == "gone").Section);
        Assert.All(store.Writes, w => Assert.Equal(IndexPart.Shadow, w.Part));
    }

    [Fact]
    public async Task ASectionHandedOverAsABuilder_IsBuiltOncePerRound_HoweverOftenItChanged()
    {
        var store = new RecordingStore();
        await using var behind = New(store, new FakeTimeProvider());
        var builds = 0;
        for (var v = 1; v <= 10; v++)
        {
            var version = v;
            behind.Enqueue("lamp", () =>
            {
                Interlocked.Increment(ref builds);
                return Section(version);
            });
        }

        Assert.Equal(0, builds);   // nothing built while the thing updates
        await behind.FlushAsync();
        Assert.Equal(1, builds);
        Assert.Equal(Section(10), store.Stored["lamp"]);
    }

    [Fact]
    public async Task AFailedRound_KeepsItsSections_ButANewerOneWins()
    {
        var store = new RecordingStore { Fail = true };
        await using var behind = New(store, new FakeTimeProvider());
        behind.Enqueue("lamp", Section(1));
        behind.Enqueue("fan", Section(1));
        store.DuringWrite = () => behind.Enqueue("fan", Section(2));   // an update while the round is being written

        await Assert.ThrowsAsync<InvalidOperationException>(behind.FlushAsync);
        Assert.Equal(2, behind.Pending);

        store.Fail = false;
        store.DuringWrite = null;
        await behind.FlushAsync();
        Assert.Equal(Section(1), store.Stored["lamp"]);
        Assert.Equal(Section(2), store.Stored["fan"]);
    }

    [Fact]
    public async Task SectionsAreWritten_OnTheClocksInterval_WithoutASearch()
    {
        var store = new RecordingStore();
        var clock = new FakeTimeProvider();
        await using var behind = New(store, clock);
        behind.Enqueue("lamp", Section(1));
        Assert.Empty(store.Writes);   // the clock has not moved: no round

        // The loop may not be waiting on the clock yet when it first moves: move it a round at a time until it writes.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (store.Writes.Count == 0 && DateTime.UtcNow < deadline)
        {
            clock.Advance(Interval);
            await Task.Delay(10);
        }

        Assert.Equal(Section(1), store.Stored["lamp"]);
    }

    [Fact]
    public async Task Disposing_WritesWhatItHolds()
    {
        var store = new RecordingStore();
        var behind = New(store, new FakeTimeProvider());
        behind.Enqueue("lamp", Section(3));
        await behind.DisposeAsync();
        await behind.DisposeAsync();   // registered twice in the container: disposed twice
        Assert.Equal(Section(3), store.Stored["lamp"]);
    }

    private static IndexWriteBehind New(IFleetIndexStore store, TimeProvider clock) =>
        new(store, Options.Create(new FleetIndexOptions { WriteBehind = Interval }), clock, NullLogger<IndexWriteBehind>.Instance);

    private static IndexSection Section(int version) => new($$"""{"version":{{version}}}""", $$"""{"shadow.version":[{{version}}]}""");

    private sealed class RecordingStore : IFleetIndexStore
    {
        public List<(string Thing, IndexPart Part, IndexSection? Section)> Writes { get; } = [];

        public Dictionary<string, IndexSection?> Stored { get; } = [];

        public bool Fail { get; set; }

        public Action? DuringWrite { get; set; }

        public Task WriteConnectivityAsync(IReadOnlyList<ConnectivityIndexWrite> writes) => throw new NotSupportedException("the write-behind writes shadow parts only");

        public async Task WriteAsync(string thingName, IReadOnlyList<IndexPartWrite> parts)
        {
            await Task.Yield();
            DuringWrite?.Invoke();
            if (Fail)
            {
                throw new InvalidOperationException("the database is away");
            }

            lock (Writes)
            {
                foreach (var part in parts)
                {
                    Writes.Add((thingName, part.Part, part.Section));
                    Stored[thingName] = part.Section;
                }
            }
        }

        public Task RemoveAsync(string thingName) => throw new NotSupportedException();

        public Task<IndexSearchPage> SearchAsync(FleetQuery query, string? afterThingName, int maxResults) => throw new NotSupportedException();

        public Task<FleetStatistics> StatisticsAsync(FleetQuery query, string field) => throw new NotSupportedException();

        public Task<long> CardinalityAsync(FleetQuery query, string field) => throw new NotSupportedException();

        public Task<IReadOnlyList<FleetPercentile>> PercentilesAsync(FleetQuery query, string field, IReadOnlyList<double> percents) => throw new NotSupportedException();

        public Task<IReadOnlyList<FleetBucket>> BucketsAsync(FleetQuery query, string field, int maxBuckets) => throw new NotSupportedException();

        public Task<RegistryPage<string>> NamesAsync(string? afterThingName, int maxResults) => throw new NotSupportedException();
    }
}
