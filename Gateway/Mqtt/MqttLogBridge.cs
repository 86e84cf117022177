using Microsoft.Extensions.Logging;
using MQTTnet.Diagnostics.Logger;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>Sends MQTTnet's own log (protocol errors, dropped connections) to the host's logging.</summary>
internal sealed class MqttLogBridge(ILoggerFactory loggerFactory) : IMqttNetLogger
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("MQTTnet");

    public bool IsEnabled => _logger.IsEnabled(LogLevel.Warning);

    /// <summary>Protocol violations and transport failures (resets, broken pipes, aborted connections).</summary>
    private static bool IsClientSide(Exception? exception) => exception is MQTTnet.Exceptions.MqttProtocolViolationException
        or MQTTnet.Exceptions.MqttCommunicationException
        or IOException                                   // includes Kestrel's ConnectionResetException
        or System.Net.Sockets.SocketException
        or OperationCanceledException;

    public void Publish(MqttNetLogLevel level, string source, string message, object[] parameters, Exception exception)
    {
        var logLevel = level switch
        {
            // A client that breaks the protocol or drops its connection is the client's problem, not the
            // server's: a warning, so that server errors stay meaningful (tests fail on unexpected errors).
            MqttNetLogLevel.Error when IsClientSide(exception) => LogLevel.Warning,
            MqttNetLogLevel.Error => LogLevel.Error,
            MqttNetLogLevel.Warning => LogLevel.Warning,
            MqttNetLogLevel.Info => LogLevel.Information,
            _ => LogLevel.Debug,
        };
        if (!_logger.IsEnabled(logLevel))
        {
            return;
        }

        var text = parameters is { Length: > 0 } ? string.Format(System.Globalization.CultureInfo.InvariantCulture, message, parameters) : message;
#pragma warning disable CA2254 // MQTTnet formats its own messages; the text is not a template.
        _logger.Log(logLevel, exception, "[{Source}] " + text.Replace("{", "{{", StringComparison.Ordinal).Replace("}", "}}", StringComparison.Ordinal), source);
#pragma warning restore CA2254
    }
}
