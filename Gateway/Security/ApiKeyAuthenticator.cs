using System.Collections.Concurrent;
using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Security;

/// <summary>
/// Verifies <c>Authorization: Bearer oiot_{keyId}_{secret}</c> against the stored hashes (read once per node and key,
/// dropped on every node when a key is deleted), or against the configured bootstrap admin key. On the
/// deployment's first start without a configured key, makes an admin key and prints it once.
/// </summary>
internal sealed partial class ApiKeyAuthenticator(
    IGrainFactory grains,
    IOptions<AuthOptions> auth,
    IHostApplicationLifetime lifetime,
    ILogger<ApiKeyAuthenticator> logger) : IHostedService
{
    /// <summary>The key id of the configured bootstrap key (in the audit log).</summary>
    public const string BootstrapKeyId = "bootstrap";

    private const int MaxCached = 10_000;
    private readonly byte[]? _bootstrapHash = auth.Value.BootstrapAdminKey is { Length: > 0 } key ? SHA256.HashData(Encoding.UTF8.GetBytes(key)) : null;
    private readonly ConcurrentDictionary<string, ApiKeyCheck?> _keys = new(StringComparer.Ordinal);

    /// <summary>The caller's key id and role, or null when the key is missing, malformed, unknown or wrong.</summary>
    public async ValueTask<(string KeyId, string Role)?> AuthenticateAsync(string presented)
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes(presented));
        if (_bootstrapHash is not null && CryptographicOperations.FixedTimeEquals(hash, _bootstrapHash))
        {
            return (BootstrapKeyId, ApiKeyRoles.Admin);
        }

        // oiot_{16 hex}_{secret}
        if (!presented.StartsWith("oiot_", StringComparison.Ordinal) || presented.Length < 5 + 16 + 2 || presented[21] != '_')
        {
            return null;
        }

        var check = await FindAsync(presented[5..21]);
        var secretHash = SHA256.HashData(Encoding.UTF8.GetBytes(presented[22..]));
        return check is not null && CryptographicOperations.FixedTimeEquals(secretHash, check.SecretHash) ? (check.KeyId, check.Role) : null;
    }

    /// <summary>
    /// The role and secret hash of a key by id (the bootstrap key's too), or null when there is none: what a dashboard
    /// session is signed with and checked against, so deleting the key ends its sessions on every node.
    /// </summary>
    public async ValueTask<(string Role, byte[] SecretHash)?> SecretOfAsync(string keyId) =>
        keyId == BootstrapKeyId
            ? _bootstrapHash is { } bootstrap ? (ApiKeyRoles.Admin, bootstrap) : null
            : await FindAsync(keyId) is { } check ? (check.Role, check.SecretHash) : null;

    /// <summary>A key's role and secret hash (cached per node until the key changes), or null when there is no such key.</summary>
    public async ValueTask<ApiKeyCheck?> FindAsync(string keyId)
    {
        if (!_keys.TryGetValue(keyId, out var check))
        {
            check = await grains.GetGrain<IApiKeysGrain>(0).Find(keyId);
            if (_keys.Count >= MaxCached)
            {
                _keys.Clear();
            }

            _keys[keyId] = check;
        }

        return check;
    }

    /// <summary>A key was deleted (on any node): read it again next time.</summary>
    public void Forget(string? keyId)
    {
        if (keyId is null)
        {
            _keys.Clear();
        }
        else
        {
            _keys.TryRemove(keyId, out _);
        }
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (_bootstrapHash is null)
        {
            lifetime.ApplicationStarted.Register(() => _ = Task.Run(BootstrapAsync));
        }

        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    private async Task BootstrapAsync()
    {
        try
        {
            if (await grains.GetGrain<IApiKeysGrain>(0).Bootstrap() is { } key)
            {
                LogBootstrapKey(logger, key);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogBootstrapFailed(logger, ex);
        }
    }

    [LoggerMessage(EventId = 1041, Level = LogLevel.Warning, Message = "First start: made the admin API key {Key} (shown this once; use it as 'Authorization: Bearer <key>', make your own keys with POST /api/apikeys, then delete this one)")]
    private static partial void LogBootstrapKey(ILogger logger, string key);

    [LoggerMessage(EventId = 1042, Level = LogLevel.Error, Message = "Could not make the first-start admin API key; set Iot:Auth:BootstrapAdminKey")]
    private static partial void LogBootstrapFailed(ILogger logger, Exception exception);
}
