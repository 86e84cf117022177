using System.Globalization;
using System.Text.RegularExpressions;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Registry;

namespace OrleansIot.Grains.Policies;

/// <summary>A named policy and its versions (see <see cref="IPolicyGrain"/>), persisted.</summary>
[GrainType("policy")]
internal sealed partial class PolicyGrain(
    [PersistentState("policy", StorageNames.Default)] IPersistentState<PolicyState> state,
    Microsoft.Extensions.Options.IOptions<RegistryOptions> registry,
    IAccessChangeNotifier access,
    TimeProvider time) : Grain, IPolicyGrain
{
    public const int MaxVersions = 5;
    public const int MaxPoliciesPerCertificate = 10;
    public const int MaxPoliciesPerThingGroup = 2;

    private string Name => this.GetPrimaryKeyString();

    private PolicyState State => state.State;

    public async Task<PolicyVersionInfo> Create(string document)
    {
        CheckName();
        if (State.Versions.Count > 0)
        {
            throw ApiException.AlreadyExists($"Policy {Name} already exists.");
        }

        Validate(document);
        var now = time.GetUtcNow();
        State.Versions.Add(new PolicyVersionState { Id = 1, Document = document, Created = now });
        (State.DefaultVersion, State.NextVersion, State.Created, State.Modified) = (1, 2, now, now);
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<Catalogs.INameCatalogGrain>(Catalogs.INameCatalogGrain.Policies).Add(Name);
        return Info(State.Versions[0]);
    }

    public Task<PolicyInfo?> Get()
    {
        if (State.Versions.Count == 0)
        {
            return Task.FromResult<PolicyInfo?>(null);
        }

        var current = State.Versions.Single(v => v.Id == State.DefaultVersion);
        return Task.FromResult<PolicyInfo?>(new PolicyInfo(Name, current.Document, Id(current.Id), State.Created, State.Modified,
            $"{State.Modified.ToUnixTimeMilliseconds():x}{State.DefaultVersion}"));
    }

    public async Task Delete()
    {
        Existing();
        if (State.Targets.Count > 0)
        {
            throw new ApiException(409, "DeleteConflictException", $"Policy {Name} is attached to {State.Targets.Count} target(s); detach it first.");
        }

        if (State.Versions.Count > 1)
        {
            throw new ApiException(409, "DeleteConflictException", $"Policy {Name} has versions besides the default; delete them first.");
        }

        await state.ClearStateAsync();
        state.State = new PolicyState();
        await GrainFactory.GetGrain<Catalogs.INameCatalogGrain>(Catalogs.INameCatalogGrain.Policies).Remove(Name);
    }

    public async Task<PolicyVersionInfo> CreateVersion(string document, bool setAsDefault)
    {
        Existing();
        if (State.Versions.Count >= MaxVersions)
        {
            throw new ApiException(409, "VersionsLimitExceededException", $"Policy {Name} already has {MaxVersions} versions; delete one first.");
        }

        Validate(document);
        var now = time.GetUtcNow();
        var version = new PolicyVersionState { Id = State.NextVersion++, Document = document, Created = now };
        State.Versions.Add(version);
        if (setAsDefault)
        {
            State.DefaultVersion = version.Id;
        }

        State.Modified = now;
        await state.WriteStateAsync();
        if (setAsDefault)
        {
            await ChangedAsync();
        }

        return Info(version);
    }

    public Task<PolicyVersionInfo?> GetVersion(string versionId) =>
        Task.FromResult(State.Versions.FirstOrDefault(v => Id(v.Id) == versionId) is { } v ? Info(v) : null);

    public Task<IReadOnlyList<PolicyVersionInfo>> ListVersions()
    {
        Existing();
        return Task.FromResult<IReadOnlyList<PolicyVersionInfo>>([.. State.Versions.OrderByDescending(v => v.Id).Select(Info)]);
    }

    public async Task SetDefaultVersion(string versionId)
    {
        var version = Version(versionId);
        State.DefaultVersion = version.Id;
        State.Modified = time.GetUtcNow();
        await state.WriteStateAsync();
        await ChangedAsync();
    }

    public async Task DeleteVersion(string versionId)
    {
        var version = Version(versionId);
        if (version.Id == State.DefaultVersion)
        {
            throw new ApiException(409, "DeleteConflictException", $"Version {versionId} is the default version of policy {Name}; make another the default first.");
        }

        State.Versions.Remove(version);
        await state.WriteStateAsync();
    }

    public async Task Attach(string target)
    {
        Existing();
        var kind = PolicyTargets.Kind(target);
        target = PolicyTargets.Canonical(target, registry.Value);
        if (kind == "thinggroup" && await GrainFactory.GetGrain<IThingGroupGrain>(PolicyTargets.Name(target)).Describe() is null)
        {
            throw ApiException.NotFound($"Thing group {PolicyTargets.Name(target)} cannot be found.");
        }

        // The target first: it enforces its limit before anything is recorded here.
        await GrainFactory.GetGrain<IPolicyTargetGrain>(target).Add(Name, kind == "cert" ? MaxPoliciesPerCertificate : MaxPoliciesPerThingGroup);
        if (State.Targets.Add(target))
        {
            await state.WriteStateAsync();
        }

        await TargetChangedAsync(target);
    }

    public async Task Detach(string target)
    {
        target = PolicyTargets.Canonical(target, registry.Value);
        await GrainFactory.GetGrain<IPolicyTargetGrain>(target).Remove(Name);
        if (State.Targets.Remove(target))
        {
            await state.WriteStateAsync();
        }

        await TargetChangedAsync(target);
    }

    /// <summary>Connections holding this policy read it again, on every node.</summary>
    private Task ChangedAsync() => access.Changed(new AccessChange(AccessChangeKind.Policy, Name));

    /// <summary>
    /// An attachment changed: the certificate's connections read their policies again; for a thing group, whose
    /// members the gateways do not know, every connection does.
    /// </summary>
    private Task TargetChangedAsync(string target) =>
        access.Changed(PolicyTargets.Kind(target) == "cert"
            ? new AccessChange(AccessChangeKind.Certificate, PolicyTargets.Name(target))
            : new AccessChange(AccessChangeKind.Policy, null));

    public Task<IReadOnlyList<string>> ListTargets()
    {
        Existing();
        return Task.FromResult<IReadOnlyList<string>>([.. State.Targets.Order(StringComparer.Ordinal)]);
    }

    private PolicyVersionInfo Info(PolicyVersionState v) => new(Name, Id(v.Id), v.Document, v.Id == State.DefaultVersion, v.Created);

    private static string Id(int version) => version.ToString(CultureInfo.InvariantCulture);

    private PolicyVersionState Version(string versionId)
    {
        Existing();
        return State.Versions.FirstOrDefault(v => Id(v.Id) == versionId)
            ?? throw ApiException.NotFound($"Version {versionId} of policy {Name} cannot be found.");
    }

    private void Existing()
    {
        if (State.Versions.Count == 0)
        {
            throw ApiException.NotFound($"Policy {Name} cannot be found.");
        }
    }

    private void CheckName()
    {
        if (!NamePattern().IsMatch(Name))
        {
            throw ApiException.Invalid($"Policy name '{Name}' is invalid: 1 to 128 of letters, digits and _+=,.@-.");
        }
    }

    private static void Validate(string document)
    {
        try
        {
            IotPolicy.Parse(document);
        }
        catch (MalformedPolicyException ex)
        {
            throw new ApiException(400, "MalformedPolicyException", ex.Message);
        }
    }

    [GeneratedRegex(@"^[\w+=,.@-]{1,128}$")]
    private static partial Regex NamePattern();
}

/// <summary>What targets a policy attaches to: certificate and thing-group ARNs.</summary>
internal static partial class PolicyTargets
{
    /// <summary>"cert" or "thinggroup"; anything else is refused.</summary>
    public static string Kind(string target)
    {
        var match = TargetPattern().Match(target);
        return match.Success
            ? match.Groups["kind"].Value
            : throw ApiException.Invalid($"Target '{target}' is not a certificate ARN (arn:aws:iot:region:account:cert/<64 hex>) or a thing group ARN (…:thinggroup/<name>).");
    }

    public static string Name(string target) => target[(target.IndexOf('/', StringComparison.Ordinal) + 1)..];

    /// <summary>The target's ARN in this deployment's region and account (one deployment is one account), so the same target is one key however it was written.</summary>
    public static string Canonical(string target, RegistryOptions options) => options.Arn($"{Kind(target)}/{Name(target)}");

    [GeneratedRegex(@"^arn:aws:iot:[^:]*:[^:]*:(?:(?<kind>cert)/[0-9a-f]{64}|(?<kind>thinggroup)/[a-zA-Z0-9:_-]{1,128})$")]
    private static partial Regex TargetPattern();
}

[GenerateSerializer, Alias("OrleansIot.PolicyState")]
public sealed class PolicyState
{
    [Id(0)] public List<PolicyVersionState> Versions { get; set; } = [];

    [Id(1)] public int DefaultVersion { get; set; }

    [Id(2)] public int NextVersion { get; set; } = 1;

    [Id(3)] public HashSet<string> Targets { get; set; } = new(StringComparer.Ordinal);

    [Id(4)] public DateTimeOffset Created { get; set; }

    [Id(5)] public DateTimeOffset Modified { get; set; }
}

[GenerateSerializer, Alias("OrleansIot.PolicyVersionState")]
public sealed class PolicyVersionState
{
    [Id(0)] public int Id { get; set; }

    [Id(1)] public string Document { get; set; } = "";

    [Id(2)] public DateTimeOffset Created { get; set; }
}
