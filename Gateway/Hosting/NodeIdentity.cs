namespace OrleansIot.Gateway.Hosting;

/// <summary>The name this node gives itself in connectivity records and telemetry.</summary>
public sealed record NodeIdentity(string Name);
