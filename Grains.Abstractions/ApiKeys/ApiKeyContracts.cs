namespace OrleansIot.Grains.Abstractions.ApiKeys;

/// <summary>What a backend caller with an API key may do.</summary>
public static class ApiKeyRoles
{
    /// <summary>Everything, including certificates, policies, provisioning templates and API keys.</summary>
    public const string Admin = "admin";

    /// <summary>Reads everything; changes things, shadows, rules, queues and connections, not identity and access.</summary>
    public const string Operator = "operator";

    /// <summary>Reads only.</summary>
    public const string Reader = "reader";

    /// <summary>Every role.</summary>
    public static readonly IReadOnlyList<string> All = [Admin, Operator, Reader];
}

/// <summary>An API key as listed: never its secret.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ApiKeyInfo")]
public sealed record ApiKeyInfo(
    [property: Id(0)] string KeyId,
    [property: Id(1)] string Name,
    [property: Id(2)] string Role,
    [property: Id(3)] DateTimeOffset CreatedAt);

/// <summary>What verifying a key needs: its role and the SHA-256 of its secret.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ApiKeyCheck")]
public sealed record ApiKeyCheck(
    [property: Id(0)] string KeyId,
    [property: Id(1)] string Role,
    [property: Id(2)] byte[] SecretHash);

/// <summary>
/// The API keys of the deployment (one grain: a deployment has tens of keys, read once per node and key). Keys look
/// like <c>oiot_{keyId}_{secret}</c>; only the SHA-256 of the secret is stored (the secret is 256 random bits, so a
/// fast hash is enough), and the whole key is shown once, when it is made.
/// </summary>
[Alias("OrleansIot.IApiKeysGrain")]
public interface IApiKeysGrain : IGrainWithIntegerKey
{
    /// <summary>Makes a key; returns it whole (the only time it is seen).</summary>
    [Alias("Create")]
    Task<(ApiKeyInfo Info, string Key)> Create(string name, string role);

    /// <summary>Every key, oldest first.</summary>
    [Alias("List"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<ApiKeyInfo>> List();

    /// <summary>Deletes a key (callers using it are refused from then on, on every node); <c>ResourceNotFoundException</c> if unknown.</summary>
    [Alias("Delete")]
    Task Delete(string keyId);

    /// <summary>The key's role and secret hash, or null.</summary>
    [Alias("Find"), Orleans.Concurrency.ReadOnly]
    Task<ApiKeyCheck?> Find(string keyId);

    /// <summary>On the deployment's first start (no key was ever made): an admin key, returned whole once; otherwise null.</summary>
    [Alias("Bootstrap")]
    Task<string?> Bootstrap();
}
