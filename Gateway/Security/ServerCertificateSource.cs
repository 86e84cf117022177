using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Certificates;

namespace OrleansIot.Gateway.Security;

/// <summary>
/// The TLS listeners' handshake settings: the server certificate (configured, or issued to this node by the platform
/// CA once the silo is up: the CA lives in a grain) and a request for the client's certificate. Any client
/// certificate passes the handshake, which proves the client holds its key; whether it may connect is decided at
/// CONNECT against the registry (<see cref="DeviceAuthenticator"/>), where a revoked or unknown certificate gets an
/// MQTT answer instead of a broken handshake.
/// </summary>
internal sealed partial class ServerCertificateSource(
    IOptions<TlsOptions> options,
    X509Certificate2? configured,
    IGrainFactory grains,
    TimeProvider time,
    ILogger<ServerCertificateSource> logger) : IHostedService, IDisposable
{
    private readonly TaskCompletionSource<Handshakes> _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly CancellationTokenSource _stopping = new();
    private volatile Handshakes? _current;

    /// <summary>
    /// The per-connection callback Kestrel calls for one listener; waits for the certificate while the node is
    /// starting. Each listener gets settings of its own because they differ in ALPN, and because Kestrel fills in
    /// the HTTP protocols on settings that name none: shared settings once made the MQTT listener answer
    /// <c>x-amzn-mqtt-ca</c> (every AWS IoT Device SDK v2 connection) with the alert no_application_protocol.
    /// </summary>
    public ValueTask<SslServerAuthenticationOptions> OnConnectionAsync(TlsHandshakeCallbackContext context, TlsListener listener) =>
        _current is { } current
            ? ValueTask.FromResult(current.For(listener))
            : new ValueTask<SslServerAuthenticationOptions>(WaitAsync(listener, context.CancellationToken));

    private async Task<SslServerAuthenticationOptions> WaitAsync(TlsListener listener, CancellationToken cancellationToken) =>
        (await _ready.Task.WaitAsync(cancellationToken)).For(listener);

    /// <summary>The certificate in use, once there is one.</summary>
    public X509Certificate2? Certificate { get; private set; }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!options.Value.Enabled)
        {
            return Task.CompletedTask;
        }

        if (configured is not null)
        {
            Use(Settings(configured));
            var notAfter = configured.NotAfter.ToUniversalTime();
            LogConfigured(logger, configured.Subject, configured.Thumbprint, options.Value.CertificatePath!, notAfter);
            return Task.CompletedTask;
        }

        _ = Task.Run(IssueAsync, CancellationToken.None);
        return Task.CompletedTask;
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        await _stopping.CancelAsync();
        _ready.TrySetCanceled(CancellationToken.None);
    }

    public void Dispose() => _stopping.Dispose();

    /// <summary>
    /// Asks the platform CA for a certificate of a key made here (the key never leaves the node), retried until the
    /// cluster answers, and again with a new key when two thirds of its validity have passed.
    /// </summary>
    private async Task IssueAsync()
    {
        while (!_stopping.IsCancellationRequested && await IssueOnceAsync() is { } certificate)
        {
            var renewAt = certificate.NotBefore.ToUniversalTime() + ((certificate.NotAfter - certificate.NotBefore) * 2 / 3);
            for (var wait = renewAt - time.GetUtcNow().UtcDateTime; wait > TimeSpan.Zero && !_stopping.IsCancellationRequested; wait = renewAt - time.GetUtcNow().UtcDateTime)
            {
                // In steps of at most a day: Task.Delay takes no more than ~49 days.
                await Task.Delay(wait < TimeSpan.FromDays(1) ? wait : TimeSpan.FromDays(1), time, _stopping.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }

    private async Task<X509Certificate2?> IssueOnceAsync()
    {
        var names = new List<string> { "localhost", "127.0.0.1", "::1", Environment.MachineName };
        names.AddRange(options.Value.HostNames.Where(n => !names.Contains(n, StringComparer.OrdinalIgnoreCase)));
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        for (var attempt = 1; !_stopping.IsCancellationRequested; attempt++)
        {
            try
            {
                var pem = await grains.GetGrain<ICertificateAuthorityGrain>(ICertificateAuthorityGrain.Key)
                    .SignServer(key.ExportSubjectPublicKeyInfo(), names, options.Value.IssuedValidityDays);
                using var issued = X509Certificate2.CreateFromPem(pem).CopyWithPrivateKey(key);
                // Re-imported so SslStream can use the key on every platform.
                var certificate = X509CertificateLoader.LoadPkcs12(issued.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
                Use(Settings(certificate));
                LogIssued(logger, certificate.Subject, names, certificate.NotAfter);
                return certificate;
            }
            catch (Exception ex) when (!_stopping.IsCancellationRequested)
            {
                LogIssueFailed(logger, ex, attempt);
                await Task.Delay(TimeSpan.FromSeconds(Math.Min(attempt, 5)), _stopping.Token).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }

        return null;
    }

    /// <summary>New handshakes use these settings; the first ones also release the handshakes waiting at start.</summary>
    private void Use(Handshakes settings)
    {
        _current = settings;
        _ready.TrySetResult(settings);
    }

    private Handshakes Settings(X509Certificate2 certificate)
    {
        Certificate = certificate;
        var context = SslStreamCertificateContext.Create(certificate, additionalCertificates: null, offline: true);
        return new Handshakes(
            Settings(context, [.. Alpn.Mqtt]),
            Settings(context, [.. Alpn.Https]),
            Settings(context, [.. Alpn.Multiplexed]));
    }

    private static SslServerAuthenticationOptions Settings(SslStreamCertificateContext certificate, List<SslApplicationProtocol> protocols) =>
        new()
        {
            ServerCertificateContext = certificate,
            // In the server's order of preference. A client that offers ALPN but none of these gets the alert
            // no_application_protocol (RFC 7301 3.2); one that offers none is served without it.
            ApplicationProtocols = protocols,
            EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
            ClientCertificateRequired = true,
            // .NET's default, stated because a reconnecting fleet depends on it: TLS 1.3 tickets and TLS 1.2 session
            // ids resume without a full handshake (a third of its CPU), and a resumed session keeps the device's
            // certificate for CONNECT to decide on (TlsResumptionTests).
            AllowTlsResume = true,
            // Any certificate passes the handshake (the handshake proves the key); CONNECT decides on the registry.
#pragma warning disable CA5359 // deliberate: the registry, not a trust store, decides (DeviceAuthenticator)
            RemoteCertificateValidationCallback = static (_, _, _, _) => true,
#pragma warning restore CA5359
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            CertificateChainPolicy = new X509ChainPolicy
            {
                TrustMode = X509ChainTrustMode.CustomRootTrust,
                RevocationMode = X509RevocationMode.NoCheck,
                DisableCertificateDownloads = true,
            },
        };

    /// <summary>One listener's settings for each kind, made together from one certificate.</summary>
    private sealed record Handshakes(SslServerAuthenticationOptions Mqtt, SslServerAuthenticationOptions Https, SslServerAuthenticationOptions Multiplexed)
    {
        public SslServerAuthenticationOptions For(TlsListener listener) => listener switch
        {
            TlsListener.Mqtt => Mqtt,
            TlsListener.Https => Https,
            _ => Multiplexed,
        };
    }

    [LoggerMessage(EventId = 1044, Level = LogLevel.Information, Message = "The TLS listeners use the configured server certificate {Subject} (thumbprint {Thumbprint}) from {Path}, valid until {NotAfter:u}")]
    private static partial void LogConfigured(ILogger logger, string subject, string thumbprint, string path, DateTime notAfter);

    [LoggerMessage(EventId = 1045, Level = LogLevel.Information, Message = "The platform CA issued this node's server certificate {Subject} for {Names}, valid until {NotAfter:u}")]
    private static partial void LogIssued(ILogger logger, string subject, IReadOnlyList<string> names, DateTime notAfter);

    [LoggerMessage(EventId = 1046, Level = LogLevel.Warning, Message = "Could not get a server certificate from the platform CA (attempt {Attempt}); the TLS listeners wait")]
    private static partial void LogIssueFailed(ILogger logger, Exception exception, int attempt);
}
