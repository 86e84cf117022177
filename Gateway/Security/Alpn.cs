using System.Net.Security;

namespace OrleansIot.Gateway.Security;

/// <summary>The TLS listeners, which differ in what they offer by ALPN.</summary>
internal enum TlsListener
{
    /// <summary>MQTT with device certificates (8883).</summary>
    Mqtt,

    /// <summary>HTTPS: API, shadow and publish data plane, secure WebSockets (8443).</summary>
    Https,

    /// <summary>MQTT and HTTPS on one port, told apart by ALPN (AWS's 443).</summary>
    Multiplexed,
}

/// <summary>
/// The application protocols AWS IoT's endpoints negotiate by ALPN, which the AWS IoT Device SDKs offer:
/// <c>x-amzn-mqtt-ca</c> (MQTT with an X.509 certificate; the SDK v2 offers it on every port), <c>mqtt</c> (on AWS, MQTT
/// with a custom authorizer; here MQTT with a certificate, as every TLS connection needs one) and
/// <c>x-amzn-http-ca</c> (HTTPS with an X.509 certificate), besides HTTP's own.
/// </summary>
internal static class Alpn
{
    public static readonly SslApplicationProtocol MqttCa = new("x-amzn-mqtt-ca");
    public static readonly SslApplicationProtocol MqttPlain = new("mqtt");
    public static readonly SslApplicationProtocol HttpCa = new("x-amzn-http-ca");

    /// <summary>Offered by the MQTT listener; a client offering no ALPN at all is served too (AWS: "none" on 8883).</summary>
    public static readonly List<SslApplicationProtocol> Mqtt = [MqttCa, MqttPlain];

    /// <summary>Offered by the HTTPS listener.</summary>
    public static readonly List<SslApplicationProtocol> Https = [SslApplicationProtocol.Http2, SslApplicationProtocol.Http11, HttpCa];

    /// <summary>Offered by the multiplexed listener: the MQTT ones first, so a client offering both gets MQTT.</summary>
    public static readonly List<SslApplicationProtocol> Multiplexed = [.. Mqtt, .. Https];

    /// <summary>Whether a connection's negotiated protocol is MQTT (no ALPN on the multiplexed port means HTTPS, as on AWS).</summary>
    public static bool IsMqtt(ReadOnlyMemory<byte> negotiated) =>
        negotiated.Span.SequenceEqual(MqttCa.Protocol.Span) || negotiated.Span.SequenceEqual(MqttPlain.Protocol.Span);
}
