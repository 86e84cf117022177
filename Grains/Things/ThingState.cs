namespace OrleansIot.Grains.Things;

// Stored as JSON (System.Text.Json, no type names): the property names are the storage schema. Append, never rename.
[GenerateSerializer, Alias("OrleansIot.ThingState")]
public sealed class ThingState
{
    [Id(0)] public DateTimeOffset? FirstSeenAt { get; set; }
    [Id(1)] public ConnectivityState Connectivity { get; set; } = new();
    [Id(2)] public UsageState Usage { get; set; } = new();
    [Id(3)] public long ConnectionVersion { get; set; }

    /// <summary>Whether the thing is in the registry (only registered things are in the fleet index).</summary>
    [Id(4)] public bool Registered { get; set; }

    /// <summary>Usage per UTC day, by <see cref="DateOnly.DayNumber"/>; the last <c>UsageRetentionDays</c> are kept.</summary>
    [Id(5)] public SortedDictionary<int, DayUsageState> Days { get; set; } = [];

    /// <summary>Connections that ended (or were replaced), newest first; the last <c>ConnectionHistory</c> are kept.</summary>
    [Id(6)] public List<PastConnectionState> History { get; set; } = [];
}

/// <summary>
/// A connection that is over. <see cref="EndedAt"/> and <see cref="DisconnectReason"/> stay empty while a connection
/// that was replaced (a takeover, or its node died) has not reported its end.
/// </summary>
[GenerateSerializer, Alias("OrleansIot.ThingState.PastConnection")]
public sealed class PastConnectionState
{
    [Id(0)] public string? SessionId { get; set; }
    [Id(1)] public DateTimeOffset? ConnectedAt { get; set; }
    [Id(2)] public DateTimeOffset? EndedAt { get; set; }
    [Id(3)] public string? DisconnectReason { get; set; }
    [Id(4)] public string? Node { get; set; }
    [Id(5)] public string? RemoteAddress { get; set; }
    [Id(6)] public int? ProtocolVersion { get; set; }
}

/// <summary>One day's usage: the running totals' counters, plus what only a day has.</summary>
[GenerateSerializer, Alias("OrleansIot.ThingState.DayUsage")]
public sealed class DayUsageState : UsageState
{
    [Id(0)] public double ConnectedSeconds { get; set; }
    [Id(1)] public long ShadowOperations { get; set; }
}

[GenerateSerializer, Alias("OrleansIot.ThingState.Connectivity")]
public sealed class ConnectivityState
{
    [Id(0)] public bool Connected { get; set; }
    [Id(1)] public DateTimeOffset? Since { get; set; }
    [Id(2)] public string? SessionId { get; set; }
    [Id(3)] public string? RemoteAddress { get; set; }
    [Id(4)] public string? Node { get; set; }
    [Id(5)] public int? ProtocolVersion { get; set; }
    [Id(6)] public string? DisconnectReason { get; set; }
    [Id(7)] public DateTimeOffset? LastDisconnectAt { get; set; }
}

[GenerateSerializer, Alias("OrleansIot.ThingState.Usage")]
public class UsageState
{
    [Id(0)] public long MessagesIn { get; set; }
    [Id(1)] public long BytesIn { get; set; }
    [Id(2)] public long MessagesOut { get; set; }
    [Id(3)] public long BytesOut { get; set; }
    [Id(4)] public long MessagesDropped { get; set; }
    [Id(5)] public long RuleExecutions { get; set; }
    [Id(6)] public long JobExecutions { get; set; }
}
