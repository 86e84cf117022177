using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.ApiKeys;
using OrleansIot.Grains.Abstractions.Policies;

namespace OrleansIot.Grains.ApiKeys;

/// <summary>
/// The deployment's API keys, persisted: the SHA-256 of each Bearer secret, and each secret access key encrypted
/// (AES-256-GCM under a key derived from <c>Iot:Auth:CaKeyPassword</c> with PBKDF2, as the CA's private key is), because
/// verifying a SigV4 signature needs the secret itself.
/// </summary>
[GrainType("api-keys")]
internal sealed class ApiKeysGrain(
    [PersistentState("api-keys", StorageNames.Default)] IPersistentState<ApiKeysState> state,
    IAccessChangeNotifier access,
    IOptions<Certificates.CertificateAuthorityOptions> auth,
    TimeProvider time) : Grain, IApiKeysGrain
{
    private byte[]? _secretsKey;   // derived once per activation (PBKDF2 is slow on purpose)

    public const int MaxKeys = 1000;
    public const string Prefix = "oiot_";

    public async Task<NewApiKey> Create(string name, string role)
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
        var secretAccessKey = Convert.ToBase64String(RandomNumberGenerator.GetBytes(30));   // 40 characters, as AWS's
        var entry = new ApiKeyState
        {
            KeyId = keyId, Name = name, Role = role, CreatedAt = time.GetUtcNow(),
            SecretHash = SHA256.HashData(Encoding.UTF8.GetBytes(secret)),
            EncryptedSecretAccessKey = Encrypt(keyId, secretAccessKey),
        };
        state.State.Keys.Add(entry);
        state.State.Bootstrapped = true;
        await state.WriteStateAsync();
        return new NewApiKey(Info(entry), $"{Prefix}{keyId}_{secret}", AccessKeyIds.Of(keyId), secretAccessKey);
    }

    public Task<byte[]?> SigningKey(string keyId, string date, string region, string service)
    {
        if (state.State.Keys.FirstOrDefault(k => k.KeyId == keyId) is not { EncryptedSecretAccessKey: { Length: > 0 } encrypted }
            || Decrypt(keyId, encrypted) is not { } secret)
        {
            return Task.FromResult<byte[]?>(null);
        }

        var key = HMACSHA256.HashData(Encoding.UTF8.GetBytes("AWS4" + secret), Encoding.UTF8.GetBytes(date));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(region));
        key = HMACSHA256.HashData(key, Encoding.UTF8.GetBytes(service));
        return Task.FromResult<byte[]?>(HMACSHA256.HashData(key, "aws4_request"u8));
    }

    private byte[] Encrypt(string keyId, string secret)
    {
        var plain = Encoding.UTF8.GetBytes(secret);
        var sealedSecret = new byte[12 + plain.Length + 16];   // nonce | ciphertext | tag
        RandomNumberGenerator.Fill(sealedSecret.AsSpan(0, 12));
        using var aes = new AesGcm(SecretsKey(), 16);
        aes.Encrypt(sealedSecret.AsSpan(0, 12), plain, sealedSecret.AsSpan(12, plain.Length), sealedSecret.AsSpan(12 + plain.Length), Encoding.UTF8.GetBytes(keyId));
        return sealedSecret;
    }

    /// <summary>The secret, or null when it cannot be read (the CA key password was changed since it was stored).</summary>
    private string? Decrypt(string keyId, byte[] sealedSecret)
    {
        var plain = new byte[sealedSecret.Length - 12 - 16];
        try
        {
            using var aes = new AesGcm(SecretsKey(), 16);
            aes.Decrypt(sealedSecret.AsSpan(0, 12), sealedSecret.AsSpan(12, plain.Length), sealedSecret.AsSpan(12 + plain.Length), plain, Encoding.UTF8.GetBytes(keyId));
            return Encoding.UTF8.GetString(plain);
        }
        catch (AuthenticationTagMismatchException)
        {
            return null;
        }
    }

    private byte[] SecretsKey()
    {
        if (_secretsKey is null)
        {
            if (state.State.SecretsSalt.Length == 0)
            {
                state.State.SecretsSalt = RandomNumberGenerator.GetBytes(16);   // written with the key that first uses it
            }

            _secretsKey = Rfc2898DeriveBytes.Pbkdf2(auth.Value.CaKeyPassword, state.State.SecretsSalt, 100_000, HashAlgorithmName.SHA256, 32);
        }

        return _secretsKey;
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

        return (await Create("bootstrap admin", ApiKeyRoles.Admin)).Key;
    }

    private static ApiKeyInfo Info(ApiKeyState key) =>
        new(key.KeyId, key.Name, key.Role, key.CreatedAt, key.EncryptedSecretAccessKey.Length > 0 ? AccessKeyIds.Of(key.KeyId) : null);

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}

[GenerateSerializer, Alias("OrleansIot.ApiKeysState")]
public sealed class ApiKeysState
{
    [Id(0)] public List<ApiKeyState> Keys { get; set; } = [];

    /// <summary>Set once any key was made, so the first-start key is made once per deployment.</summary>
    [Id(1)] public bool Bootstrapped { get; set; }

    /// <summary>The PBKDF2 salt of the key that encrypts secret access keys (made with the first of them).</summary>
    [Id(2)] public byte[] SecretsSalt { get; set; } = [];
}

[GenerateSerializer, Alias("OrleansIot.ApiKeyState")]
public sealed class ApiKeyState
{
    [Id(0)] public string KeyId { get; set; } = "";
    [Id(1)] public string Name { get; set; } = "";
    [Id(2)] public string Role { get; set; } = "";
    [Id(3)] public byte[] SecretHash { get; set; } = [];
    [Id(4)] public DateTimeOffset CreatedAt { get; set; }

    /// <summary>The secret access key, encrypted (nonce, ciphertext, tag; the key id authenticated with it); empty for older keys.</summary>
    [Id(5)] public byte[] EncryptedSecretAccessKey { get; set; } = [];
}
