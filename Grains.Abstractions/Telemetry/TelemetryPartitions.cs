using System.Text;

namespace OrleansIot.Grains.Abstractions.Telemetry;

/// <summary>
/// Maps a publisher to its telemetry partition. Partitioning by client id keeps each publisher's messages on one
/// stream, so consumers see them in order. Every node must use the same partition count.
/// </summary>
public static class TelemetryPartitions
{
    /// <summary>The partition count used when configuration does not say otherwise.</summary>
    public const int DefaultCount = 8;

    /// <summary>The partition of a client id: a stable hash (FNV-1a over UTF-8), the same on every node and version.</summary>
    public static int For(string clientId, int partitionCount)
    {
        ArgumentNullException.ThrowIfNull(clientId);
        ArgumentOutOfRangeException.ThrowIfLessThan(partitionCount, 1);
        Span<byte> buffer = stackalloc byte[256];
        var bytes = Encoding.UTF8.GetByteCount(clientId) <= buffer.Length
            ? buffer[..Encoding.UTF8.GetBytes(clientId, buffer)]
            : Encoding.UTF8.GetBytes(clientId);
        var hash = 2166136261u;
        foreach (var b in bytes)
        {
            hash = (hash ^ b) * 16777619u;
        }

        return (int)(hash % (uint)partitionCount);
    }

    /// <summary>The stream key of a partition.</summary>
    public static string StreamKey(int partition) => partition.ToString(System.Globalization.CultureInfo.InvariantCulture);
}
