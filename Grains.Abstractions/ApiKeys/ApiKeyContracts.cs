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

/// <summary>
/// An API key as listed: never its secrets. <see cref="AccessKeyId"/>: the key as an AWS credential (SigV4), null for
/// keys made before keys had one.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ApiKeyInfo")]
public sealed record ApiKeyInfo(
    [property: Id(0)] string KeyId,
    [property: Id(1)] string Name,
    [property: Id(2)] string Role,
    [property: Id(3)] DateTimeOffset CreatedAt,
    [property: Id(4)] string? AccessKeyId = null);

/// <summary>
/// A key just made, the only time its secrets are seen: the Bearer key, and the same key as an AWS credential pair
/// (access key id and secret access key) for callers that sign requests with SigV4 (the AWS SDKs and CLI).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.NewApiKey")]
public sealed record NewApiKey(
    [property: Id(0)] ApiKeyInfo Info,
    [property: Id(1)] string Key,
    [property: Id(2)] string AccessKeyId,
    [property: Id(3)] string SecretAccessKey);

/// <summary>AWS access key ids of API keys: <c>OIOT</c> and the key id in capitals (20 characters, as AWS's).</summary>
public static class AccessKeyIds
{
    /// <summary>What every access key id of ours starts with.</summary>
    public const string Prefix = "OIOT";

    private static readonly System.Buffers.SearchValues<char> UpperHex = System.Buffers.SearchValues.Create("0123456789ABCDEF");

    /// <summary>The access key id of an API key.</summary>
    public static string Of(string keyId) => Prefix + keyId.ToUpperInvariant();

    /// <summary>The key id an access key id names, or null when it is not one of ours.</summary>
    public static string? KeyIdOf(string accessKeyId) =>
        accessKeyId.Length == Prefix.Length + 16 && accessKeyId.StartsWith(Prefix, StringComparison.Ordinal)
        && !accessKeyId.AsSpan(Prefix.Length).ContainsAnyExcept(UpperHex)
            ? accessKeyId[Prefix.Length..].ToLowerInvariant()
            : null;
}

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
    /// <summary>Makes a key; returns it whole, with its AWS credential pair (the only time they are seen).</summary>
    [Alias("Create")]
    Task<NewApiKey> Create(string name, string role);

    /// <summary>Every key, oldest first.</summary>
    [Alias("List"), Orleans.Concurrency.ReadOnly]
    Task<IReadOnlyList<ApiKeyInfo>> List();

    /// <summary>Deletes a key (callers using it are refused from then on, on every node); <c>ResourceNotFoundException</c> if unknown.</summary>
    [Alias("Delete")]
    Task Delete(string keyId);

    /// <summary>The key's role and secret hash, or null.</summary>
    [Alias("Find"), Orleans.Concurrency.ReadOnly]
    Task<ApiKeyCheck?> Find(string keyId);

    /// <summary>
    /// The SigV4 signing key of a key's secret access key for one day (<c>yyyyMMdd</c>), region and service (AWS's
    /// derivation: HMAC-SHA256 chained over "AWS4"+secret, date, region, service, "aws4_request"), or null when the
    /// key is unknown or has no secret access key. Scoped keys leave the grain; the secret itself never does.
    /// </summary>
    [Alias("SigningKey"), Orleans.Concurrency.ReadOnly]
    Task<byte[]?> SigningKey(string keyId, string date, string region, string service);

    /// <summary>On the deployment's first start (no key was ever made): an admin key, returned whole once; otherwise null.</summary>
    [Alias("Bootstrap")]
    Task<string?> Bootstrap();
}
