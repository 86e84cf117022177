using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.WebConsole;

/// <summary>The console is a client of the documented API: every path it calls is in the OpenAPI document.</summary>
[Collection(NodeCollection.Name)]
public sealed partial class ConsoleApiCallsTests(NodeFixture node)
{
    [GeneratedRegex(@"[`'](/(?:api|things)/[^`'?]*)")]
    private static partial Regex CalledPath();

    [GeneratedRegex(@"\$\{[^}]*\}")]
    private static partial Regex Interpolation();

    [Fact]
    public async Task EveryPathTheConsoleCalls_IsInTheOpenApiDocument()
    {
        var script = await File.ReadAllTextAsync(Path.Combine(NodeClients.Folder, "..", "..", "Gateway", "Console", "console.js"));
        var called = CalledPath().Matches(script)
            .Select(m => Interpolation().Replace(m.Groups[1].Value, "{}").TrimEnd('/'))
            .Where(p => !p.EndsWith("{}", StringComparison.Ordinal) || p.Count(c => c == '/') > 1)
            .Distinct(StringComparer.Ordinal)
            .ToList();
        Assert.True(called.Count >= 15, $"{called.Count} paths found in console.js: {string.Join(", ", called)}");

        using var anonymous = new HttpClient { BaseAddress = node.Http.BaseAddress };
        var documented = (await ApiAssert.OkAsync(await anonymous.GetAsync("/openapi/v1.json")))["paths"]!.AsObject()
            .Select(p => p.Key.Split('/'))
            .ToList();
        var missing = called.Where(path =>
        {
            var segments = path.Split('/');
            return !documented.Any(d => d.Length == segments.Length && d.Zip(segments).All(s => s.First == s.Second || (s.First.StartsWith('{') && s.Second == "{}")));
        }).ToList();
        Assert.True(missing.Count == 0, $"called by the console, not in the OpenAPI document: {string.Join(", ", missing)}");
    }
}
