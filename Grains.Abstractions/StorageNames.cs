namespace OrleansIot.Grains.Abstractions;

/// <summary>Names of the grain storage providers. One place, so configuration and grains cannot drift apart.</summary>
public static class StorageNames
{
    /// <summary>
    /// Grain state of the IoT grains (things, sessions, rules ...). Not the stream provider's name: Orleans keeps a
    /// stream provider's pubsub state in the storage named like the provider when one exists, and that state must
    /// not go through our JSON serializer (it cannot be read back). Stored rows do not carry this name.
    /// </summary>
    public const string Default = "iot-state";

    /// <summary>Storage Orleans needs for explicit stream subscriptions (the name is fixed by Orleans).</summary>
    public const string PubSub = "PubSubStore";
}
