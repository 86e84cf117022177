using System.Diagnostics;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Readme;

/// <summary>
/// README.md is a tested artifact: every <c>bash</c> block runs, in order, in one shell, in a scratch directory that
/// links to the repository, against a node started as the Quick start says (default ports, TLS on, the embedded
/// default). A block passes when no command in it fails (an expected refusal is written <c>… || echo refused</c>), when
/// every <c># =&gt; text</c> it carries is in what it printed (background subscribers included), and when the JSON its
/// last command printed has every field of a <c>json</c> block right after it. Marks on the line before a block:
/// <c>&lt;!-- readme-test: own-nodes --&gt;</c> for blocks that run nodes of their own (the test node is stopped for
/// them; <c>dotnet run --project Silo</c> starts the built silo in the background until the section ends) and
/// <c>&lt;!-- readme-test: skip (why) --&gt;</c>.
/// </summary>
[Collection(LocalClusterScripts.Name)]
public sealed class ReadmeTests : IAsyncLifetime
{
    private const string Key = "readme-admin-key-0123456789";
    private static readonly TimeSpan BlockTimeout = TimeSpan.FromMinutes(3);

    private readonly string _work = Directory.CreateTempSubdirectory("orleansiot-readme-").FullName;

    // Not under the private scratch directory: as root the database server runs as the postgres user.
    private readonly string _pgDirectory = Path.Combine(Path.GetTempPath(), $"orleansiot-readme-pg-{Guid.NewGuid():N}");
    private Process _shell = null!;
    private readonly StringBuilder _output = new();
    private SiloProcess? _node;

    private static string Root => Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", ".."));

    public Task InitializeAsync()
    {
        // The scratch directory looks like the repository (scripts find their siblings) but takes the files the
        // commands write (certificates, JSON answers).
        foreach (var entry in Directory.EnumerateFileSystemEntries(Root).Where(e => Path.GetFileName(e) is not ".git"))
        {
            File.CreateSymbolicLink(Path.Combine(_work, Path.GetFileName(entry)), entry);
        }

        var start = new ProcessStartInfo("bash", ["--noprofile", "--norc"])
        {
            WorkingDirectory = _work,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        start.Environment["IOT_SILO_DLL"] = SiloProcess.SiloDll;
        // The scripts' state goes where it cannot touch a developer's own throwaway database or local cluster.
        start.Environment["IOT_RUN_DIR"] = Path.Combine(_work, ".run");
        start.Environment["IOT_PG_DIR"] = _pgDirectory;
        start.Environment["IOT_PG_PORT"] = FreePorts.Next().ToString(System.Globalization.CultureInfo.InvariantCulture);
        start.Environment.Remove("ConnectionStrings__Iot");
        _shell = Process.Start(start)!;
        _shell.OutputDataReceived += (_, e) => Append(e.Data);
        _shell.ErrorDataReceived += (_, e) => Append(e.Data);
        _shell.BeginOutputReadLine();
        _shell.BeginErrorReadLine();
        _shell.StandardInput.WriteLine(Prelude);
        _shell.StandardInput.Flush();
        return Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        try
        {
            await RunAsync("cleanup", "__stop_own_nodes; deploy/local/cluster.sh stop >/dev/null 2>&1; deploy/local/postgres.sh stop >/dev/null 2>&1; true");
            _shell.StandardInput.WriteLine("exit");
            await _shell.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        }
        finally
        {
            if (!_shell.HasExited)
            {
                _shell.Kill(entireProcessTree: true);
            }

            if (_node is not null)
            {
                await _node.DisposeAsync();
            }

            Directory.Delete(_work, recursive: true);
        }
    }

    [Fact]
    public async Task EveryCommandBlock_RunsAsWritten_AndPrintsWhatItSays()
    {
        var blocks = ReadmeBlocks.Parse(await File.ReadAllLinesAsync(Path.Combine(Root, "README.md")));
        Assert.True(blocks.Count(b => !b.Skip) >= 15, "the README has its command blocks");
        var failures = new List<string>();
        string? section = null;
        foreach (var block in blocks)
        {
            if (block.Skip)
            {
                continue;
            }

            if (block.Section != section)
            {
                await RunAsync("section", "__stop_own_nodes");
                section = block.Section;
            }

            if (block.OwnNodes)
            {
                await StopNodeAsync();
            }
            else
            {
                await RunAsync("section", "__stop_own_nodes");
                await StartNodeAsync();
            }

            var (output, errors) = await RunAsync($"line {block.Line}", block.Script.Replace("oiot_…", Key, StringComparison.Ordinal));
            var problems = errors.ToList();
            problems.AddRange(block.Expectations.Where(e => !output.Contains(e, StringComparison.Ordinal)).Select(e => $"did not print: {e}"));
            if (block.Shape is { } shape && ShapeProblem(shape, output) is { } mismatch)
            {
                problems.Add(mismatch);
            }

            if (problems.Count > 0)
            {
                failures.Add($"README.md line {block.Line} ({block.Section}):\n  {string.Join("\n  ", problems)}\n  printed:\n{Indent(output)}");
            }
        }

        Assert.True(failures.Count == 0, string.Join("\n\n", failures));
    }

    private async Task StartNodeAsync()
    {
        if (_node is { HasExited: false })
        {
            return;
        }

        _node = SiloProcess.Start(
            new Dictionary<string, string>
            {
                ["Iot__BindAddress"] = "localhost",
                ["Iot__Tls__Enabled"] = "true",
                ["Iot__Auth__BootstrapAdminKey"] = Key,
                ["Iot__Http__Port"] = "8080",
                ["Iot__Mqtt__Port"] = "1883",
            },
            mqttPort: 1883,
            httpPort: 8080,
            siloPort: 11111,
            gatewayPort: 30000);
        await _node.WaitUntilReadyAsync();
    }

    private async Task StopNodeAsync()
    {
        if (_node is not null)
        {
            await _node.DisposeAsync();
            _node = null;
        }
    }

    /// <summary>Runs a script in the shell; what it printed, and the commands that failed.</summary>
    private async Task<(string Output, IReadOnlyList<string> Errors)> RunAsync(string what, string script)
    {
        var file = Path.Combine(_work, $".block-{Guid.NewGuid():N}.sh");
        await File.WriteAllTextAsync(file, script + "\n");
        var marker = Guid.NewGuid().ToString("N");
        int from;
        lock (_output)
        {
            from = _output.Length;
        }

        await _shell.StandardInput.WriteLineAsync($"__block {marker} '{file}'");
        await _shell.StandardInput.FlushAsync();
        var waited = Stopwatch.StartNew();
        while (true)
        {
            string text;
            lock (_output)
            {
                text = _output.ToString(from, _output.Length - from);
            }

            if (text.Contains($"@@end {marker}", StringComparison.Ordinal))
            {
                var lines = text.Split('\n').Where(l => !l.StartsWith("@@end ", StringComparison.Ordinal)).ToList();
                var errors = lines.Where(l => l.StartsWith("@@error ", StringComparison.Ordinal)).Select(l => l["@@error ".Length..]).ToList();
                return (string.Join("\n", lines.Where(l => !l.StartsWith("@@error ", StringComparison.Ordinal))), errors);
            }

            if (_shell.HasExited || waited.Elapsed > BlockTimeout)
            {
                throw new TimeoutException($"README {what} did not finish in {BlockTimeout}; it printed:\n{text}");
            }

            await Task.Delay(100);
        }
    }

    private void Append(string? line)
    {
        if (line is not null)
        {
            lock (_output)
            {
                _output.Append(line).Append('\n');
            }
        }
    }

    /// <summary>Every field of the documented JSON is in the last JSON object the block printed.</summary>
    private static string? ShapeProblem(JsonNode documented, string output)
    {
        var last = output.Split('\n').LastOrDefault(l => l.TrimStart().StartsWith('{'));
        JsonNode? actual;
        try
        {
            actual = last is null ? null : JsonNode.Parse(last);
        }
        catch (System.Text.Json.JsonException)
        {
            actual = null;
        }

        if (actual is null)
        {
            return "printed no JSON object to compare with the json block after it";
        }

        var missing = Paths(documented, "").Where(p => !Has(actual, p)).ToList();
        return missing.Count == 0 ? null : $"the JSON printed lacks what the README shows: {string.Join(", ", missing)}";
    }

    private static IEnumerable<string> Paths(JsonNode? node, string prefix) => node is JsonObject o
        ? o.SelectMany(p => Paths(p.Value, prefix.Length == 0 ? p.Key : $"{prefix}.{p.Key}").Prepend(prefix.Length == 0 ? p.Key : $"{prefix}.{p.Key}"))
        : [];

    private static bool Has(JsonNode node, string path)
    {
        JsonNode? current = node;
        foreach (var key in path.Split('.'))
        {
            if (current is not JsonObject o || !o.ContainsKey(key))
            {
                return false;
            }

            current = o[key];
        }

        return true;
    }

    private static string Indent(string text) => string.Join("\n", text.Split('\n').TakeLast(60).Select(l => "    | " + l));

    /// <summary>
    /// The shell's helpers: the block runner (failures recorded by an ERR trap, background jobs given two seconds and
    /// then ended), and <c>dotnet run --project Silo</c> as a node in the background that lives until the section ends.
    /// </summary>
    private const string Prelude = """
        exec 2>&1
        set -o pipefail -o errtrace
        __own_nodes=()
        __block() {
          trap 'echo "@@error $BASH_COMMAND (exit $?)"' ERR
          source "$2"
          trap - ERR
          if [[ -n "$(jobs -p)" ]]; then sleep 2; kill $(jobs -p) 2>/dev/null; wait 2>/dev/null; fi
          echo "@@end $1"
        }
        dotnet() {
          if [[ "${1:-} ${2:-} ${3:-}" != "run --project Silo" ]]; then command dotnet "$@"; return; fi
          shift 3; [[ "${1:-}" == "--" ]] && shift
          local log="node-$RANDOM.log"
          command dotnet "$IOT_SILO_DLL" "$@" > "$log" 2>&1 &
          local pid=$!
          disown
          __own_nodes+=("$pid")
          local port=$(( ${Iot__Http__Port:-8080} + ${Iot__PortOffset:-0} ))
          for _ in $(seq 1 300); do
            curl -fs "http://localhost:$port/health" > /dev/null && return 0
            kill -0 "$pid" 2>/dev/null || { echo "the node exited:"; tail -n 20 "$log"; return 1; }
            sleep 0.2
          done
          echo "the node did not become ready"; tail -n 20 "$log"; return 1
        }
        __stop_own_nodes() {
          for pid in "${__own_nodes[@]}"; do kill "$pid" 2>/dev/null; done
          for pid in "${__own_nodes[@]}"; do for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done; kill -9 "$pid" 2>/dev/null; done
          __own_nodes=()
          true
        }
        """;
}

/// <summary>The command blocks of a markdown file, with their marks, expectations and the JSON shown after them.</summary>
internal sealed record ReadmeBlocks(int Line, string Section, string Script, bool Skip, bool OwnNodes, IReadOnlyList<string> Expectations, JsonNode? Shape)
{
    public static IReadOnlyList<ReadmeBlocks> Parse(string[] lines)
    {
        var blocks = new List<ReadmeBlocks>();
        var section = "";
        for (var i = 0; i < lines.Length; i++)
        {
            if (lines[i].StartsWith('#'))
            {
                section = lines[i].TrimStart('#', ' ');
                continue;
            }

            if (lines[i] != "```bash")
            {
                continue;
            }

            var mark = i > 0 ? lines[i - 1] : "";
            var end = Array.IndexOf(lines, "```", i + 1);
            var body = lines[(i + 1)..end];
            var expectations = body
                .Select(l => l.IndexOf("# => ", StringComparison.Ordinal))
                .Zip(body, (at, l) => at < 0 ? null : l[(at + 5)..].Trim())
                .OfType<string>()
                .ToList();
            var next = end + 1;
            while (next < lines.Length && lines[next].Length == 0)
            {
                next++;
            }

            JsonNode? shape = null;
            if (next < lines.Length && lines[next] == "```json")
            {
                var close = Array.IndexOf(lines, "```", next + 1);
                shape = JsonNode.Parse(string.Join("\n", lines[(next + 1)..close]));
            }

            blocks.Add(new ReadmeBlocks(i + 1, section, string.Join("\n", body), mark.StartsWith("<!-- readme-test: skip", StringComparison.Ordinal),
                mark == "<!-- readme-test: own-nodes -->", expectations, shape));
            i = end;
        }

        return blocks;
    }
}
