using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;

namespace OrleansIot.Gateway.Hosting;

/// <summary>Loads the TLS listeners' certificate at start; a missing or unusable one stops the node naming the key.</summary>
public static class ServerCertificate
{
    /// <summary>Loads and checks the configured certificate; <paramref name="now"/> is the time it must be valid at.</summary>
    public static X509Certificate2 Load(TlsOptions options, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(options);
        var path = options.CertificatePath!;
        if (!File.Exists(path))
        {
            throw Invalid("CertificatePath", $"file '{path}' does not exist.");
        }

        X509Certificate2 certificate;
        try
        {
            var extension = Path.GetExtension(path).ToLowerInvariant();
            if (extension is ".pfx" or ".p12")
            {
                certificate = X509CertificateLoader.LoadPkcs12FromFile(path, options.CertificatePassword, X509KeyStorageFlags.Exportable);
            }
            else
            {
                if (string.IsNullOrWhiteSpace(options.KeyPath) || !File.Exists(options.KeyPath))
                {
                    throw Invalid("KeyPath", "a PEM certificate needs its private key file.");
                }

                using var pem = X509Certificate2.CreateFromPemFile(path, options.KeyPath);
                // Re-imported so the key is usable by SslStream on every platform.
                certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
            }
        }
        catch (Exception ex) when (ex is CryptographicException or FormatException or IOException)
        {
            throw Invalid("CertificatePath", $"cannot load '{path}': {ex.Message}");
        }

        if (!certificate.HasPrivateKey)
        {
            throw Invalid("CertificatePath", $"'{path}' has no private key.");
        }

        if (certificate.NotAfter.ToUniversalTime() < now.UtcDateTime)
        {
            throw Invalid("CertificatePath", $"the certificate expired on {certificate.NotAfter:u}.");
        }

        return certificate;
    }

    private static OptionsValidationException Invalid(string key, string message) =>
        new(TlsOptions.SectionName, typeof(TlsOptions), [$"{TlsOptions.SectionName}:{key}: {message}"]);
}
