namespace OrleansIot.Grains.Abstractions;

/// <summary>Names of the grain storage providers. One place, so configuration and grains cannot drift apart.</summary>
public static class StorageNames
{
    /// <summary>Grain state of the IoT grains (things, sessions, rules ...).</summary>
    public const string Default = "iot";

    /// <summary>Storage Orleans needs for explicit stream subscriptions (the name is fixed by Orleans).</summary>
    public const string PubSub = "PubSubStore";
}
