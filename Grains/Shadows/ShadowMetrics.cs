using System.Diagnostics.Metrics;
using OrleansIot.Grains.Abstractions.Shadows;

namespace OrleansIot.Grains.Shadows;

/// <summary>Shadow requests by operation and outcome (meter <c>OrleansIot.Shadows</c>), from MQTT and HTTP alike.</summary>
internal static class ShadowMetrics
{
    public const string MeterName = "OrleansIot.Shadows";

    private static readonly Meter Meter = new(MeterName);
    private static readonly Counter<long> Requests = Meter.CreateCounter<long>(
        "iot.shadow.requests", description: "Shadow requests answered, by operation (get, update, delete) and result (accepted, or rejected with its code)");

    public static void Accepted(ShadowOperation operation) =>
        Requests.Add(1, new("operation", ShadowTopics.Name(operation)), new("result", "accepted"));

    public static void Rejected(ShadowOperation operation, int code) =>
        Requests.Add(1, new("operation", ShadowTopics.Name(operation)), new("result", "rejected"), new("code", code));
}
