namespace OrleansIot.Grains.Abstractions;

/// <summary>Stream provider and stream namespace names.</summary>
public static class StreamNames
{
    /// <summary>The stream provider every node and client configures.</summary>
    public const string Provider = "iot";

    /// <summary>
    /// The inbound telemetry bus: every accepted device publish, as <see cref="Telemetry.TelemetryBatch"/> items,
    /// on one stream per partition (stream key = partition number, see <see cref="Telemetry.TelemetryPartitions"/>).
    /// </summary>
    public const string Telemetry = "telemetry";
}
