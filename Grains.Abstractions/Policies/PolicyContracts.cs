namespace OrleansIot.Grains.Abstractions.Policies;

/// <summary>A policy as AWS's <c>GetPolicy</c> answers: its default version's document.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.PolicyInfo")]
public sealed record PolicyInfo(
    [property: Id(0)] string PolicyName,
    [property: Id(1)] string PolicyDocument,
    [property: Id(2)] string DefaultVersionId,
    [property: Id(3)] DateTimeOffset CreationDate,
    [property: Id(4)] DateTimeOffset LastModifiedDate,
    [property: Id(5)] string GenerationId);

/// <summary>One version of a policy (<c>GetPolicyVersion</c>, <c>ListPolicyVersions</c>).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.PolicyVersionInfo")]
public sealed record PolicyVersionInfo(
    [property: Id(0)] string PolicyName,
    [property: Id(1)] string VersionId,
    [property: Id(2)] string PolicyDocument,
    [property: Id(3)] bool IsDefaultVersion,
    [property: Id(4)] DateTimeOffset CreateDate);

/// <summary>
/// A named IoT policy with up to five versions, one of them the default (AWS <c>CreatePolicy</c>,
/// <c>CreatePolicyVersion</c>, <c>SetDefaultPolicyVersion</c> …) and the targets it is attached to (certificates and
/// thing groups, by ARN). Documents are validated by <see cref="IotPolicy.Parse"/>: a malformed one is refused with
/// <c>MalformedPolicyException</c> and nothing is stored.
/// </summary>
[Alias("OrleansIot.IPolicyGrain")]
public interface IPolicyGrain : IGrainWithStringKey
{
    /// <summary>Creates the policy with version 1 as default; <c>ResourceAlreadyExistsException</c> if it exists.</summary>
    [Alias("Create")]
    Task<PolicyVersionInfo> Create(string document);

    /// <summary>The policy and its default document, or null.</summary>
    [Alias("Get"), Orleans.Concurrency.ReadOnly]
    Task<PolicyInfo?> Get();

    /// <summary>Deletes the policy: refused (<c>DeleteConflictException</c>) while attached or with versions besides the default.</summary>
    [Alias("Delete")]
    Task Delete();

    /// <summary>Adds a version (at most five: <c>VersionsLimitExceededException</c>), optionally as the default.</summary>
    [Alias("CreateVersion")]
    Task<PolicyVersionInfo> CreateVersion(string document, bool setAsDefault);

    /// <summary>One version, or null.</summary>
    [Alias("GetVersion"), Orleans.Concurrency.ReadOnly]
    Task<PolicyVersionInfo?> GetVersion(string versionId);

    /// <summary>All versions, newest first.</summary>
    [Alias("ListVersions"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<PolicyVersionInfo>> ListVersions();

    /// <summary>Makes a version the default.</summary>
    [Alias("SetDefaultVersion")]
    Task SetDefaultVersion(string versionId);

    /// <summary>Deletes a version other than the default (the default: <c>DeleteConflictException</c>).</summary>
    [Alias("DeleteVersion")]
    Task DeleteVersion(string versionId);

    /// <summary>Attaches the policy to a target (certificate or thing group ARN); attaching twice is fine.</summary>
    [Alias("Attach")]
    Task Attach(string target);

    /// <summary>Detaches the policy from a target; a target it is not attached to is fine.</summary>
    [Alias("Detach")]
    Task Detach(string target);

    /// <summary>The targets it is attached to (<c>ListTargetsForPolicy</c>).</summary>
    [Alias("ListTargets"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<string>> ListTargets();
}

/// <summary>The policies attached to one target (key: the target's ARN).</summary>
[Alias("OrleansIot.IPolicyTargetGrain")]
public interface IPolicyTargetGrain : IGrainWithStringKey
{
    /// <summary>Records an attachment, refusing more than the target's limit (<c>LimitExceededException</c>).</summary>
    [Alias("Add")]
    Task Add(string policyName, int limit);

    /// <summary>Forgets an attachment.</summary>
    [Alias("Remove")]
    Task Remove(string policyName);

    /// <summary>The attached policy names (<c>ListAttachedPolicies</c>).</summary>
    [Alias("List"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<string>> List();
}

/// <summary>Questions across policies: any node answers.</summary>
[Alias("OrleansIot.IPolicyQueryGrain")]
public interface IPolicyQueryGrain : IGrainWithIntegerKey
{
    /// <summary>AWS <c>ListPolicies</c>: names in order, paged by marker.</summary>
    [Alias("List")]
    Task<(IReadOnlyList<string> Names, string? NextMarker)> List(string? marker, int pageSize);

    /// <summary>
    /// AWS <c>GetEffectivePolicies</c>: the policies of the principal (a certificate ARN) and, when a thing is named,
    /// of its thing groups and their ancestors (inherited down the hierarchy), each once, with its default document.
    /// </summary>
    [Alias("Effective")]
    Task<IReadOnlyList<PolicyInfo>> Effective(string? principal, string? thingName);
}
