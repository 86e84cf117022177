using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using OrleansIot.Gateway.Hosting;

namespace OrleansIot.Silo.Hosting;

/// <summary>
/// <c>Iot:PortOffset</c>: added to every port the node listens on (MQTT, HTTP, their TLS twins, the multiplexed port,
/// Orleans' silo and gateway ports), so a second node on one machine is one setting
/// (<c>Iot__PortOffset=1 dotnet run --project Silo</c>) rather than seven.
/// </summary>
internal static class PortOffset
{
    public const string Key = "Iot:PortOffset";

    public static void Apply(ConfigurationManager configuration)
    {
        var text = configuration[Key];
        if (string.IsNullOrWhiteSpace(text))
        {
            return;
        }

        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var offset) || offset is < 0 or > 1000)
        {
            throw new OptionsValidationException(Key, typeof(int), [$"{Key}: '{text}' is not a whole number from 0 to 1000."]);
        }

        if (offset == 0)
        {
            return;
        }

        var mqtt = Settings.Bind<MqttOptions>(configuration, MqttOptions.SectionName);
        var tls = Settings.Bind<TlsOptions>(configuration, TlsOptions.SectionName);
        var endpoints = Settings.Bind<ClusterSettings>(configuration, ClusterSettings.SectionName).Endpoints;
        var ports = new Dictionary<string, int>
        {
            ["Iot:Mqtt:Port"] = mqtt.Port,
            ["Iot:Mqtt:TlsPort"] = mqtt.TlsPort,
            ["Iot:Http:Port"] = Settings.Bind<HttpOptions>(configuration, HttpOptions.SectionName).Port,
            ["Iot:Https:Port"] = Settings.Bind<HttpsOptions>(configuration, HttpsOptions.SectionName).Port,
            ["Orleans:Endpoints:SiloPort"] = endpoints.SiloPort,
            ["Orleans:Endpoints:GatewayPort"] = endpoints.GatewayPort,
        };
        if (tls.MultiplexPort != 0)
        {
            ports["Iot:Tls:MultiplexPort"] = tls.MultiplexPort;
        }

        if (ports.FirstOrDefault(p => p.Value + offset > 65535) is { Key: { } tooHigh } high)
        {
            throw new OptionsValidationException(Key, typeof(int), [$"{Key}: {offset} moves {tooHigh} ({high.Value}) beyond port 65535."]);
        }

        // Added last, so the moved values win over every other source (they were read from those sources above).
        configuration.AddInMemoryCollection(ports.Select(p => KeyValuePair.Create(p.Key, (string?)(p.Value + offset).ToString(CultureInfo.InvariantCulture))));
    }
}
