using System.Diagnostics;
using System.Text.Json.Nodes;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// Third-party JavaScript clients (the AWS IoT Device SDK v2 …) run by the tests: a script under
/// <c>Tests/Clients</c> takes one JSON argument and prints one JSON line, <c>{"checks": {name: bool}, "errors": [...]}</c>.
/// <c>./test.sh</c> installs their packages (<c>npm ci</c> in <c>Tests/Clients</c>); without them these tests fail and
/// say so, never skip.
/// </summary>
public static class NodeClients
{
    /// <summary>The folder of the scripts and their <c>node_modules</c>, in the source tree.</summary>
    public static string Folder { get; } = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "Tests", "Clients"));

    /// <summary>Runs a script and returns what it printed; fails when it does not finish in <paramref name="timeout"/>.</summary>
    public static async Task<JsonObject> RunAsync(string script, JsonObject arguments, TimeSpan? timeout = null)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        if (!Directory.Exists(Path.Combine(Folder, "node_modules")))
        {
            throw new InvalidOperationException($"The JavaScript test clients are not installed: run ./test.sh, or 'npm ci' in {Folder}.");
        }

        var start = new ProcessStartInfo("node")
        {
            WorkingDirectory = Folder,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.ArgumentList.Add(script);
        start.ArgumentList.Add(arguments.ToJsonString());
        using var process = Process.Start(start) ?? throw new InvalidOperationException("node did not start");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(90));
        try
        {
            await process.WaitForExitAsync(cancel.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{script} did not finish; it printed: {await output} {await errors}");
        }

        var lines = (await output).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return lines.Length > 0 && lines[^1].StartsWith('{') && JsonNode.Parse(lines[^1]) is JsonObject result
            ? result
            : throw new InvalidOperationException($"{script} exited with {process.ExitCode} and no result: {await output} {await errors}");
    }

    /// <summary>Asserts that every check the script made passed (and that it made the expected ones), naming those that did not.</summary>
    public static void AssertPassed(JsonObject result, params string[] expectedChecks)
    {
        ArgumentNullException.ThrowIfNull(result);
        var checks = result["checks"]!.AsObject();
        var failed = expectedChecks.Where(c => checks[c]?.GetValue<bool>() != true).ToList();
        Assert.True(failed.Count == 0, $"failed: {string.Join(", ", failed)}; errors: {result["errors"]?.ToJsonString()}");
    }
}
