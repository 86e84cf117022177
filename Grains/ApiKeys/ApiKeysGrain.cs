using System.Security.Cryptography;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.ApiKeys;
using OrleansIot.Grains.Abstractions.Policies;

namespace OrleansIot.Grains.ApiKeys;

/// <summary>The deployment's API keys, persisted (hashes only).</summary>
[GrainType("api-keys")]
internal sealed class ApiKeysGrain(
    [PersistentState("api-keys", StorageNames.Default)] IPersistentState<ApiKeysState> state,
    IAccessChangeNotifier access,
    TimeProvider time) : Grain, IApiKeysGrain
{
    public const int MaxKeys = 1000;
    public const string Prefix = "oiot_";

    public async Task<(ApiKeyInfo Info, string Key)> Create(string name, string role)
    {
        if (string.IsNullOrWhiteSpace(name) || name.Length > 128)
        {
            throw ApiException.Invalid("name must be 1 to 128 characters.");
        }

        if (!ApiKeyRoles.All.Contains(role))
        {
            throw ApiException.Invalid($"role must be one of {string.Join(", ", ApiKeyRoles.All)}.");
        }

        if (state.State.Keys.Count >= MaxKeys)
        {
            throw ApiException.LimitExceeded($"There are already {MaxKeys} API keys; delete unused ones first.");
        }

        var keyId = Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(8));
        var secret = Base64Url(RandomNumberGenerator.GetBytes(32));
        var entry = new ApiKeyState { KeyId = keyId, Name = name, Role = role, SecretHash = SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(secret)), CreatedAt = time.GetUtcNow() };
        state.State.Keys.Add(entry);
        state.State.Bootstrapped = true;
        await state.WriteStateAsync();
        return (Info(entry), $"{Prefix}{keyId}_{secret}");
    }

    public Task<IReadOnlyList<ApiKeyInfo>> List() => Task.FromResult<IReadOnlyList<ApiKeyInfo>>([.. state.State.Keys.Select(Info)]);

    public async Task Delete(string keyId)
    {
        if (state.State.Keys.RemoveAll(k => k.KeyId == keyId) == 0)
        {
            throw ApiException.NotFound($"API key {keyId} cannot be found.");
        }

        await state.WriteStateAsync();
        await access.Changed(new AccessChange(AccessChangeKind.ApiKey, keyId));
    }

    public Task<ApiKeyCheck?> Find(string keyId) =>
        Task.FromResult(state.State.Keys.FirstOrDefault(k => k.KeyId == keyId) is { } key ? new ApiKeyCheck(key.KeyId, key.Role, key.SecretHash) : null);

    public async Task<string?> Bootstrap()
    {
        if (state.State.Bootstrapped)
        {
            return null;
        }

        var (_, key) = await Create("bootstrap admin", ApiKeyRoles.Admin);
        return key;
    }

    private static ApiKeyInfo Info(ApiKeyState key) => new(key.KeyId, key.Name, key.Role, key.CreatedAt);

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

[GenerateSerializer, Alias("OrleansIot.ApiKeysState")]
public sealed class ApiKeysState
{
    [Id(0)] public List<ApiKeyState> Keys { get; set; } = [];

    /// <summary>Set once any key was made, so the first-start key is made once per deployment.</summary>
    [Id(1)] public bool Bootstrapped { get; set; }
}

[GenerateSerializer, Alias("OrleansIot.ApiKeyState")]
public sealed class ApiKeyState
{
    [Id(0)] public string KeyId { get; set; } = "";
    [Id(1)] public string Name { get; set; } = "";
    [Id(2)] public string Role { get; set; } = "";
    [Id(3)] public byte[] SecretHash { get; set; } = [];
    [Id(4)] public DateTimeOffset CreatedAt { get; set; }
}
