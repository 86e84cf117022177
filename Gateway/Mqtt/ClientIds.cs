using MQTTnet.Server;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>The client id a connection being validated will have.</summary>
internal static class ClientIds
{
    /// <summary>
    /// The id the client sent or, when it sent none, the one assigned to it: for MQTT 5, MQTTnet keeps the assignment
    /// in <c>AssignedClientIdentifier</c> and <c>ClientId</c> stays empty (the session grain was once asked for the
    /// empty key, and every MQTT 5 client without an id lost its session's takeover and will handling).
    /// </summary>
    public static string Of(ValidatingConnectionEventArgs e) =>
        string.IsNullOrEmpty(e.ClientId) ? e.AssignedClientIdentifier ?? "" : e.ClientId;
}
