using System.Text.Json.Nodes;

namespace OrleansIot.Grains.Shadows;

/// <summary>
/// One shadow as its thing grain holds it: the state sections with their metadata, the version sequence (kept
/// after a delete, as AWS), and the outcomes of recent requests by client token (effectively-once updates).
/// </summary>
internal sealed class ShadowDocument
{
    public JsonObject? Desired { get; set; }

    public JsonObject? Reported { get; set; }

    public JsonObject? DesiredMetadata { get; set; }

    public JsonObject? ReportedMetadata { get; set; }

    /// <summary>The last accepted version; 0 before the first update. Not reset by a delete.</summary>
    public long Version { get; set; }

    /// <summary>Epoch seconds of the last accepted update.</summary>
    public long Timestamp { get; set; }

    /// <summary>False before the first update and after a delete.</summary>
    public bool Exists { get; set; }

    /// <summary>When it was deleted (the version sequence restarts 48 hours later).</summary>
    public DateTimeOffset? DeletedAt { get; set; }

    /// <summary>Storage revision: grows with every write, the condition of the next one (no lost update across activations).</summary>
    public long Revision { get; set; }

    /// <summary>Outcomes of recent accepted updates by client token, newest last.</summary>
    public List<RememberedUpdate> Remembered { get; set; } = [];

    /// <summary>A copy of the state for a merge (the live document stays as it is until the write succeeds).</summary>
    public ShadowDocument CloneState() => new()
    {
        Desired = (JsonObject?)Desired?.DeepClone(),
        Reported = (JsonObject?)Reported?.DeepClone(),
        DesiredMetadata = (JsonObject?)DesiredMetadata?.DeepClone(),
        ReportedMetadata = (JsonObject?)ReportedMetadata?.DeepClone(),
        Version = Version,
        Timestamp = Timestamp,
        Exists = Exists,
        DeletedAt = DeletedAt,
        Revision = Revision,
        Remembered = [.. Remembered],
    };
}

/// <summary>An accepted update remembered by its client token and payload hash, with the answer it got.</summary>
internal sealed record RememberedUpdate(string ClientToken, string RequestHash, long AtUnixMs, long Version, string Accepted);
