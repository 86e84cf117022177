namespace OrleansIot.Tests.Infrastructure;

/// <summary>Reads server-sent events as a browser's EventSource would: one event name and its data per block.</summary>
public static class ServerSentEvents
{
    /// <summary>The next event (comments skipped); throws when the stream ends first.</summary>
    public static async Task<(string Event, string Data)> NextAsync(StreamReader reader)
    {
        string? name = null;
        string? data = null;
        while (await reader.ReadLineAsync() is { } line)
        {
            if (line.Length == 0 && name is not null)
            {
                return (name, data ?? "");
            }

            if (line.StartsWith("event: ", StringComparison.Ordinal))
            {
                name = line[7..];
            }
            else if (line.StartsWith("data: ", StringComparison.Ordinal))
            {
                data = line[6..];
            }
        }

        throw new EndOfStreamException("the stream ended");
    }
}
