using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// Records what a node under test logs at Warning and above, so a test fails when the server logged an error it
/// did not expect (as MQTTnet's own test environment does); and, for the categories a test names
/// (<see cref="CaptureInformation"/>), at Information too.
/// </summary>
public sealed class LogCollector : ILoggerProvider
{
    private readonly ConcurrentQueue<LogEntry> _entries = new();
    private readonly ConcurrentBag<string> _informationFrom = [];

    /// <summary>
    /// Also records Information from categories starting with <paramref name="categoryPrefix"/> (the node's own
    /// <c>Logging:LogLevel</c> must let it through too).
    /// </summary>
    public void CaptureInformation(string categoryPrefix) => _informationFrom.Add(categoryPrefix);

    public IReadOnlyCollection<LogEntry> Entries => _entries;

    public IEnumerable<LogEntry> Errors => _entries.Where(e => e.Level >= LogLevel.Error);

    public ILogger CreateLogger(string categoryName) => new Collector(categoryName, _entries, this);

    public void Dispose()
    {
    }

    public sealed record LogEntry(string Category, LogLevel Level, string Message, Exception? Exception, DateTime At)
    {
        public override string ToString() => $"{Level} {Category}: {Message} {Exception}";
    }

    private sealed class Collector(string category, ConcurrentQueue<LogEntry> entries, LogCollector owner) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning
            || (logLevel == LogLevel.Information && owner._informationFrom.Any(p => category.StartsWith(p, StringComparison.Ordinal)));

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                entries.Enqueue(new LogEntry(category, logLevel, formatter(state, exception), exception, DateTime.UtcNow));
            }
        }
    }
}
