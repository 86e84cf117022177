using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OrleansIot.Grains.Rules;

/// <summary>
/// How a failed rule action is logged. A destination that is down or refuses (a webhook, a database) is expected
/// in normal operation: one line with the reason, at most one a minute per rule and action with the number of
/// failures since (each is counted in the rule metrics), the stack trace at debug. Anything else is a fault of
/// ours and is logged with its stack trace every time. One per silo, so the minute is the silo's, not each
/// partition's.
/// </summary>
internal sealed partial class ActionFailureLog(ILogger<ActionFailureLog> logger, TimeProvider time)
{
    private static readonly TimeSpan Every = TimeSpan.FromMinutes(1);

    // Actions can fail outside the grain's turn (deferred http deliveries), hence a concurrent map.
    private readonly ConcurrentDictionary<(string Rule, string Action), Window> _windows = new();

    public void Failed(string ruleName, string action, Exception exception)
    {
        if (!IsExternal(exception))
        {
            LogActionFailed(logger, exception, ruleName, action);
            return;
        }

        var now = time.GetUtcNow();
        var suppressed = 0L;
        var report = false;
        _windows.AddOrUpdate(
            (ruleName, action),
            _ =>
            {
                report = true;
                return new Window(now, 0);
            },
            (_, window) =>
            {
                if (now - window.Since < Every)
                {
                    return window with { Suppressed = window.Suppressed + 1 };
                }

                report = true;
                suppressed = window.Suppressed;
                return new Window(now, 0);
            });
        if (report)
        {
            LogDestinationFailed(logger, ruleName, action, Innermost(exception).Message, suppressed);
        }

        LogDestinationFailedDetail(logger, exception, ruleName, action);
    }

    /// <summary>A failure of the destination, not of this code: unreachable, refusing, too slow, a database error.</summary>
    private static bool IsExternal(Exception exception) => exception is HttpRequestException or TimeoutException or TaskCanceledException
        or IOException or System.Net.Sockets.SocketException or System.Data.Common.DbException
        || (exception.InnerException is { } inner && IsExternal(inner));

    private static Exception Innermost(Exception exception) => exception.InnerException is { } inner ? Innermost(inner) : exception;

    private sealed record Window(DateTimeOffset Since, long Suppressed);

    [LoggerMessage(EventId = 2003, Level = LogLevel.Warning, Message = "Rule {RuleName}: action {Action} failed: {Reason} ({Suppressed} more failures of it in the minute before)")]
    private static partial void LogDestinationFailed(ILogger logger, string ruleName, string action, string reason, long suppressed);

    [LoggerMessage(EventId = 2004, Level = LogLevel.Debug, Message = "Rule {RuleName}: action {Action} failed")]
    private static partial void LogDestinationFailedDetail(ILogger logger, Exception exception, string ruleName, string action);

    [LoggerMessage(EventId = 2005, Level = LogLevel.Warning, Message = "Rule {RuleName}: action {Action} failed")]
    private static partial void LogActionFailed(ILogger logger, Exception exception, string ruleName, string action);
}
