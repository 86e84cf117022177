using Microsoft.Extensions.Logging;
using MQTTnet.Diagnostics.Logger;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// Sends MQTTnet's own log (protocol errors, dropped connections) to the host's logging, at the level an operator
/// needs: a client that closes its socket without DISCONNECT (every <c>mosquitto_rr</c>, every device losing its
/// network) is ordinary, information in one line; a client that breaks the protocol is a warning in one line; only
/// a failure of the server is an error with its stack trace. The stack traces of the first two go to debug.
/// </summary>
internal sealed class MqttLogBridge(ILoggerFactory loggerFactory) : IMqttNetLogger
{
    private readonly ILogger _logger = loggerFactory.CreateLogger("MQTTnet");

    public bool IsEnabled => _logger.IsEnabled(LogLevel.Information);

    private enum Kind
    {
        Server,
        ClientGone,
        ClientBroke,
    }

    private static Kind Classify(Exception? exception) => exception switch
    {
        MQTTnet.Exceptions.MqttProtocolViolationException => Kind.ClientBroke,
        IOException or System.Net.Sockets.SocketException or OperationCanceledException => Kind.ClientGone,   // resets, broken pipes, Kestrel's ConnectionAbortedException
        MQTTnet.Exceptions.MqttCommunicationException { InnerException: { } inner } => Classify(inner) == Kind.ClientBroke ? Kind.ClientBroke : Kind.ClientGone,
        MQTTnet.Exceptions.MqttCommunicationException => Kind.ClientGone,
        _ => Kind.Server,
    };

    public void Publish(MqttNetLogLevel level, string source, string message, object[] parameters, Exception exception)
    {
        var kind = level == MqttNetLogLevel.Error ? Classify(exception) : Kind.Server;
        var logLevel = (level, kind) switch
        {
            (MqttNetLogLevel.Error, Kind.ClientGone) => LogLevel.Information,
            (MqttNetLogLevel.Error, Kind.ClientBroke) => LogLevel.Warning,
            (MqttNetLogLevel.Error, _) => LogLevel.Error,
            (MqttNetLogLevel.Warning, _) => LogLevel.Warning,
            (MqttNetLogLevel.Info, _) => LogLevel.Information,
            _ => LogLevel.Trace,
        };
        if (!_logger.IsEnabled(logLevel))
        {
            return;
        }

        var text = parameters is { Length: > 0 } ? string.Format(System.Globalization.CultureInfo.InvariantCulture, message, parameters) : message;
        if (kind != Kind.Server && exception is not null)
        {
            text += ": " + Innermost(exception).Message;
            if (_logger.IsEnabled(LogLevel.Debug))
            {
                Write(LogLevel.Debug, exception, source, text);
            }

            exception = null!;   // the one line above the debug one says what happened
        }

        Write(logLevel, exception, source, text);
    }

    private static Exception Innermost(Exception exception) => exception.InnerException is { } inner ? Innermost(inner) : exception;

    private void Write(LogLevel level, Exception? exception, string source, string text)
    {
        if (!_logger.IsEnabled(level))
        {
            return;
        }

        var template = "[{Source}] " + text.Replace("{", "{{", StringComparison.Ordinal).Replace("}", "}}", StringComparison.Ordinal);
#pragma warning disable CA2254 // MQTTnet formats its own messages; the text is not a template.
        _logger.Log(level, exception, template, source);
#pragma warning restore CA2254
    }
}
