using OrleansIot.Grains.Abstractions.Telemetry;

namespace OrleansIot.Tests.Telemetry;

[Trait("Category", "Unit")]
public sealed class TelemetryPartitionsTests
{
    [Theory]
    [InlineData("device-1", 8)]
    [InlineData("", 8)]
    [InlineData("ünïcode/ñame", 3)]
    [InlineData("x", 1)]
    public void For_IsInRangeAndStable(string clientId, int count)
    {
        var first = TelemetryPartitions.For(clientId, count);
        Assert.InRange(first, 0, count - 1);
        Assert.Equal(first, TelemetryPartitions.For(clientId, count));
    }

    [Fact]
    public void For_IsTheSameOnEveryNodeAndVersion()
    {
        // Pinned values: the partition of a client id is part of the wire contract between nodes of a cluster
        // (and, in PostgreSQL mode, of the queued data), so the hash must never change silently. The expected
        // values come from an independent FNV-1a (32-bit, over UTF-8) reference implementation.
        Assert.Equal(1, TelemetryPartitions.For("device-1", 8));
        Assert.Equal(5, TelemetryPartitions.For("thermostat-42", 8));
        Assert.Equal(1, TelemetryPartitions.For("device-1", 16));
    }

    [Fact]
    public void For_SpreadsClientsOverAllPartitions()
    {
        var counts = new int[8];
        for (var i = 0; i < 8000; i++)
        {
            counts[TelemetryPartitions.For($"device-{i}", 8)]++;
        }

        Assert.All(counts, c => Assert.InRange(c, 800, 1200));
    }

    [Fact]
    public void For_LongClientIds_AreHashedLikeShortOnes()
    {
        var id = new string('a', 300);
        Assert.Equal(TelemetryPartitions.For(id, 1024), TelemetryPartitions.For(id, 1024));
        Assert.InRange(TelemetryPartitions.For(id, 1024), 0, 1023);
    }
}
