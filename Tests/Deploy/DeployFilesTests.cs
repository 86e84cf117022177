using System.Diagnostics;
using System.Reflection;
using System.Text.RegularExpressions;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Silo.Hosting;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace OrleansIot.Tests.Deploy;

/// <summary>
/// The deployment files (deploy/): no container engine or Kubernetes runs here, so they are checked for what a wrong
/// edit would break: they parse, every setting they set exists, their ports are the settings' defaults, the image runs
/// the built node as a non-root user with a readiness check, and haproxy accepts its configuration.
/// </summary>
public sealed partial class DeployFilesTests
{
    private static readonly string Root = Path.GetFullPath(Path.Combine(AppContext.BaseDirectory, "..", "..", "..", ".."));

    private static string Read(string path) => File.ReadAllText(Path.Combine(Root, path));

    /// <summary>The default ports, from the settings' classes.</summary>
    private static readonly (string Name, int Port)[] Ports =
    [
        ("mqtt", new MqttOptions().Port), ("mqtts", new MqttOptions().TlsPort), ("http", new HttpOptions().Port),
        ("https", new HttpsOptions().Port), ("silo", new EndpointSettings().SiloPort), ("gateway", new EndpointSettings().GatewayPort),
    ];

    /// <summary>Every setting of the node: each options class with a <c>SectionName</c>, nested settings classes walked.</summary>
    private static SortedSet<string> Settings()
    {
        var settings = new SortedSet<string>(StringComparer.Ordinal) { "ConnectionStrings:Iot" };
        Assembly[] assemblies = [typeof(MqttOptions).Assembly, typeof(ClusterSettings).Assembly, typeof(Grains.Things.ThingOptions).Assembly, typeof(Grains.Abstractions.Registry.RegistryOptions).Assembly];
        foreach (var type in assemblies.SelectMany(a => a.GetTypes()))
        {
            if (type.GetField("SectionName", BindingFlags.Public | BindingFlags.Static) is { IsLiteral: true } field)
            {
                Walk(type, (string)field.GetRawConstantValue()!, settings);
            }
        }

        return settings;
    }

    private static void Walk(Type type, string prefix, SortedSet<string> settings)
    {
        foreach (var property in type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite || p.PropertyType.IsGenericType))
        {
            var name = $"{prefix}:{property.Name}";
            var t = property.PropertyType;
            if (t.IsClass && t != typeof(string) && !t.IsGenericType && t.Namespace?.StartsWith("OrleansIot", StringComparison.Ordinal) == true)
            {
                Walk(t, name, settings);
            }
            else if (property.CanWrite || typeof(System.Collections.IEnumerable).IsAssignableFrom(t))
            {
                settings.Add(name);
            }
        }
    }

    /// <summary>The setting an environment variable sets, or null for one that is not a setting (the pod's own, Orleans' Kubernetes ids).</summary>
    private static string? SettingOf(string variable)
    {
        if (!variable.StartsWith("Iot__", StringComparison.Ordinal) && !variable.StartsWith("Orleans__", StringComparison.Ordinal) && !variable.StartsWith("ConnectionStrings__", StringComparison.Ordinal))
        {
            return null;
        }

        var parts = variable.Split("__").ToList();
        var settings = Settings();
        // A list's index or a dictionary's key is the last part.
        return settings.Contains(string.Join(':', parts)) ? string.Join(':', parts) : string.Join(':', parts[..^1]);
    }

    private static void AssertIsASetting(string variable, string file)
    {
        if (SettingOf(variable) is { } setting)
        {
            Assert.True(Settings().Contains(setting), $"{file} sets {variable}, which is not a setting of the node");
        }
    }

    [Fact]
    public void TheDeployReadme_ListsEverySetting_WithItsEnvironmentVariable_AndNoOther()
    {
        var readme = Read("deploy/README.md");
        var rows = RowPattern().Matches(readme).ToDictionary(m => m.Groups[1].Value, m => m.Groups[2].Value);
        var settings = Settings();
        Assert.True(settings.Count > 100, $"{settings.Count} settings found");
        Assert.Empty(settings.Where(s => !rows.ContainsKey(s)).Select(s => $"missing: {s}"));
        Assert.Empty(rows.Keys.Where(s => !settings.Contains(s)).Select(s => $"not a setting: {s}"));
        Assert.All(rows, row => Assert.StartsWith(row.Key.Replace(":", "__", StringComparison.Ordinal), row.Value, StringComparison.Ordinal));
    }

    /// <summary>
    /// .NET reads the gen0 budget from the environment only (not from runtimeconfig.json), so every way we start a node
    /// sets it, to one value: without it a loaded node spends about 40 % of its CPU in GC pauses (deploy/README.md).
    /// </summary>
    [Fact]
    public void EveryShippedWayToStartANode_GivesItTheSameGcBudget()
    {
        string[] launchers = ["deploy/docker/Dockerfile", "deploy/systemd/orleansiot.service", "deploy/local/cluster.sh", "Silo/Properties/launchSettings.json", "bench/compare.sh", "bench/storm.sh", "bench/soak.sh"];
        foreach (var launcher in launchers)
        {
            var budgets = GcBudgetPattern().Matches(Read(launcher)).Select(m => m.Groups[1].Value).Distinct().ToList();
            Assert.True(budgets is ["0x4000000"], $"{launcher} sets DOTNET_GCgen0size to [{string.Join(", ", budgets)}], not [0x4000000]");
        }

        Assert.Contains("DOTNET_GCgen0size", Read("deploy/README.md"), StringComparison.Ordinal);
    }

    [Fact]
    public void TheNodesRuntimeConfig_TurnsTheThreadPoolsSpinningOff()
    {
        // Built next to the tests from Silo/Silo.csproj: whatever starts OrleansIot.Silo.dll reads it.
        var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "OrleansIot.Silo.runtimeconfig.json")))!;
        Assert.Equal(0, (int)config["runtimeOptions"]!["configProperties"]!["System.Threading.ThreadPool.UnfairSemaphoreSpinLimit"]!);
        Assert.Contains("DOTNET_ThreadPool_UnfairSemaphoreSpinLimit", Read("deploy/README.md"), StringComparison.Ordinal);
    }

    [Fact]
    public void TheImage_BuildsInStages_RunsTheNodeAsANonRootUser_WithAReadinessCheck_OnTheDefaultPorts()
    {
        var lines = Read("deploy/docker/Dockerfile").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).ToList();
        Assert.True(lines.Count(l => l.StartsWith("FROM ", StringComparison.Ordinal)) >= 2, "a build stage and a runtime stage");
        var user = Assert.Single(lines, l => l.StartsWith("USER ", StringComparison.Ordinal))[5..].Trim();
        Assert.DoesNotMatch("^(root|0)$", user);
        Assert.Contains(lines, l => l.StartsWith("RUN dotnet publish Silo/Silo.csproj", StringComparison.Ordinal));
        foreach (var copy in lines.Where(l => l.StartsWith("COPY ", StringComparison.Ordinal) && !l.Contains("--from", StringComparison.Ordinal)))
        {
            foreach (var source in copy.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..^1])
            {
                Assert.True(File.Exists(Path.Combine(Root, source)) || Directory.Exists(Path.Combine(Root, source)), $"COPY {source}: not in the repository");
            }
        }

        // The entry point is the node this repository builds.
        var entry = Assert.Single(lines, l => l.StartsWith("ENTRYPOINT ", StringComparison.Ordinal));
        Assert.Contains($"/app/{Path.GetFileName(typeof(IotSiloHost).Assembly.Location)}", entry, StringComparison.Ordinal);
        var exposed = Assert.Single(lines, l => l.StartsWith("EXPOSE ", StringComparison.Ordinal))[7..].Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Order();
        Assert.Equal(Ports.Select(p => p.Port).Order(), exposed);
        var health = string.Join(' ', lines.SkipWhile(l => !l.StartsWith("HEALTHCHECK", StringComparison.Ordinal)).Take(2));
        Assert.Contains($"\"probe\", \"http://127.0.0.1:{new HttpOptions().Port}/readyz\"", health, StringComparison.Ordinal);
        Assert.Contains(lines, l => l.Contains("Iot__BindAddress=*", StringComparison.Ordinal));   // reachable from outside the container
    }

    [Fact]
    public async Task TheComposeCluster_GivesEachNodeItsOwnAddress_AndTheBalancerEveryPortOfEveryNode()
    {
        var compose = LoadYaml("deploy/compose/compose.yaml").Single();
        var services = (YamlMappingNode)compose["services"];
        var nodes = services.Children.Where(s => ((YamlScalarNode)s.Key).Value!.StartsWith("node", StringComparison.Ordinal)).ToList();
        Assert.Equal(3, nodes.Count);
        var haproxy = Read("deploy/compose/haproxy.cfg");
        foreach (var (key, value) in nodes)
        {
            var node = (YamlMappingNode)value;
            var environment = (YamlMappingNode)node["environment"];
            var variables = environment.Children.ToDictionary(e => ((YamlScalarNode)e.Key).Value!, e => ((YamlScalarNode)e.Value).Value!);
            Assert.Equal("Postgres", variables["Iot__Storage"]);
            Assert.Contains("Host=postgres", variables["ConnectionStrings__Iot"], StringComparison.Ordinal);
            var address = ((YamlScalarNode)node["networks"]["iot"]["ipv4_address"]).Value!;
            Assert.Equal(address, variables["Orleans__Endpoints__AdvertisedIPAddress"]);
            foreach (var variable in variables.Keys)
            {
                AssertIsASetting(variable, $"compose.yaml {key}");
            }

            foreach (var (name, port) in Ports.Where(p => p.Name is not ("silo" or "gateway")))
            {
                Assert.Contains($"{address}:{port}", haproxy, StringComparison.Ordinal);
            }
        }

        var published = ((YamlSequenceNode)services["balancer"]["ports"]).Select(p => ((YamlScalarNode)p).Value!).ToList();
        Assert.Equal(Ports.Where(p => p.Name is not ("silo" or "gateway")).Select(p => $"{p.Port}:{p.Port}"), published);

        // haproxy itself accepts the configuration (test.sh installs it).
        var check = Process.Start(new ProcessStartInfo("haproxy", ["-c", "-f", Path.Combine(Root, "deploy/compose/haproxy.cfg")]) { RedirectStandardOutput = true, RedirectStandardError = true })!;
        var output = await check.StandardOutput.ReadToEndAsync() + await check.StandardError.ReadToEndAsync();
        await check.WaitForExitAsync();
        Assert.True(check.ExitCode == 0, output);
    }

    [Fact]
    public void TheKubernetesManifests_HaveEveryPart_TheSettingsExist_AndTheProbesAndPortsMatchTheNode()
    {
        var documents = LoadYaml("deploy/kubernetes/orleansiot.yaml");
        var kinds = documents.Select(d => ((YamlScalarNode)d["kind"]).Value!).ToList();
        foreach (var kind in new[] { "Namespace", "ServiceAccount", "Role", "RoleBinding", "Secret", "StatefulSet", "Service", "PodDisruptionBudget" })
        {
            Assert.Contains(kind, kinds);
        }

        var set = documents.Single(d => ((YamlScalarNode)d["kind"]).Value == "StatefulSet");
        var pod = (YamlMappingNode)set["spec"]["template"]["spec"];
        Assert.Equal("true", ((YamlScalarNode)pod["securityContext"]["runAsNonRoot"]).Value);
        var container = (YamlMappingNode)((YamlSequenceNode)pod["containers"]).Single();
        var ports = ((YamlSequenceNode)container["ports"]).Cast<YamlMappingNode>()
            .ToDictionary(p => ((YamlScalarNode)p["name"]).Value!, p => int.Parse(((YamlScalarNode)p["containerPort"]).Value!, System.Globalization.CultureInfo.InvariantCulture));
        Assert.Equal(Ports.ToDictionary(p => p.Name, p => p.Port), ports);
        Assert.Equal("/readyz", ((YamlScalarNode)container["readinessProbe"]["httpGet"]["path"]).Value);
        Assert.Equal("http", ((YamlScalarNode)container["readinessProbe"]["httpGet"]["port"]).Value);
        Assert.Equal("/healthz", ((YamlScalarNode)container["livenessProbe"]["httpGet"]["path"]).Value);

        var secret = documents.Single(d => ((YamlScalarNode)d["kind"]).Value == "Secret");
        var secretKeys = ((YamlMappingNode)secret["stringData"]).Children.Keys.Select(k => ((YamlScalarNode)k).Value!).ToHashSet();
        var env = ((YamlSequenceNode)container["env"]).Cast<YamlMappingNode>().ToList();
        foreach (var variable in env)
        {
            var name = ((YamlScalarNode)variable["name"]).Value!;
            AssertIsASetting(name, "orleansiot.yaml");
            if (variable.Children.ContainsKey("valueFrom") && ((YamlMappingNode)variable["valueFrom"]).Children.ContainsKey("secretKeyRef"))
            {
                Assert.Contains(((YamlScalarNode)variable["valueFrom"]["secretKeyRef"]["key"]).Value!, secretKeys);
            }
        }

        var names = env.Select(v => ((YamlScalarNode)v["name"]).Value!).ToHashSet();
        foreach (var required in new[] { "Orleans__KubernetesHosting", "Orleans__Endpoints__AdvertisedIPAddress", "Iot__Storage", "ConnectionStrings__Iot", "Iot__Auth__BootstrapAdminKey", "Iot__Auth__CaKeyPassword", "POD_NAME", "POD_NAMESPACE", "POD_IP" })
        {
            Assert.Contains(required, names);
        }

        // Every service's target port is one the container names.
        foreach (var service in documents.Where(d => ((YamlScalarNode)d["kind"]).Value == "Service"))
        {
            foreach (YamlMappingNode port in (YamlSequenceNode)service["spec"]["ports"])
            {
                Assert.Contains(((YamlScalarNode)port["targetPort"]).Value!, ports.Keys);
            }
        }
    }

    [Fact]
    public void TheSystemdUnit_RunsTheBuiltNode_AsItsOwnUser_WithAnEnvironmentFileOfRealSettings()
    {
        var unit = Read("deploy/systemd/orleansiot.service");
        Assert.Matches($@"(?m)^ExecStart=/usr/bin/dotnet /opt/orleansiot/{Regex.Escape(Path.GetFileName(typeof(IotSiloHost).Assembly.Location))}$", unit);
        Assert.Matches("(?m)^EnvironmentFile=/etc/orleansiot/orleansiot.env$", unit);
        Assert.Matches("(?m)^User=orleansiot$", unit);
        Assert.Matches("(?m)^RestartPreventExitStatus=2$", unit);   // a bad setting ends the node with 2: do not loop on it
        foreach (var line in Read("deploy/systemd/orleansiot.env").Split('\n').Where(l => l.Contains('=', StringComparison.Ordinal) && !l.StartsWith('#')))
        {
            AssertIsASetting(line[..line.IndexOf('=', StringComparison.Ordinal)], "orleansiot.env");
        }
    }

    private static List<YamlMappingNode> LoadYaml(string path)
    {
        using var reader = new StringReader(Read(path));
        var stream = new YamlStream();
        stream.Load(new MergingParser(new Parser(reader)));   // compose's `<<: *anchor`
        return [.. stream.Documents.Select(d => (YamlMappingNode)d.RootNode)];
    }

    [GeneratedRegex(@"^\| `([A-Za-z:]+)` \| `([A-Za-z_{}0-9]+)` \|", RegexOptions.Multiline)]
    private static partial Regex RowPattern();

    [GeneratedRegex("""DOTNET_GCgen0size["']?\s*[=:]\s*["']?(?:\$\{DOTNET_GCgen0size:-)?(0x[0-9A-Fa-f]+)""")]
    private static partial Regex GcBudgetPattern();
}
