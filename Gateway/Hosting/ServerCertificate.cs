using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;

namespace OrleansIot.Gateway.Hosting;

/// <summary>Loads a configured certificate at start; a missing or unusable one stops the node naming the key.</summary>
public static class ServerCertificate
{
    /// <summary>The TLS listeners' certificate (<c>Iot:Tls</c>), checked to be valid at <paramref name="now"/>.</summary>
    public static X509Certificate2 Load(TlsOptions options, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(options);
        return Load(TlsOptions.SectionName, options.CertificatePath!, options.KeyPath, options.CertificatePassword, now);
    }

    /// <summary>
    /// A certificate with its private key from <c>{section}:CertificatePath</c> (PEM with <c>{section}:KeyPath</c>,
    /// or PKCS#12 with <c>{section}:CertificatePassword</c>), valid at <paramref name="now"/>.
    /// </summary>
    public static X509Certificate2 Load(string section, string path, string? keyPath, string? password, DateTimeOffset now)
    {
        if (!File.Exists(path))
        {
            throw Invalid(section, "CertificatePath", $"file '{path}' does not exist.");
        }

        X509Certificate2 certificate;
        try
        {
            var extension = Path.GetExtension(path).ToLowerInvariant();
            if (extension is ".pfx" or ".p12")
            {
                certificate = X509CertificateLoader.LoadPkcs12FromFile(path, password, X509KeyStorageFlags.Exportable);
            }
            else
            {
                if (string.IsNullOrWhiteSpace(keyPath))
                {
                    throw Invalid(section, "KeyPath", "a PEM certificate needs its private key file.");
                }

                using var pem = X509Certificate2.CreateFromPemFile(path, keyPath);
                // Re-imported so the key is usable by SslStream on every platform.
                certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null, X509KeyStorageFlags.Exportable);
            }
        }
        catch (Exception ex) when (ex is CryptographicException or FormatException or IOException or UnauthorizedAccessException)
        {
            throw Invalid(section, "CertificatePath", $"cannot load '{path}': {ex.Message}");
        }

        if (!certificate.HasPrivateKey)
        {
            throw Invalid(section, "CertificatePath", $"'{path}' has no private key.");
        }

        if (certificate.NotAfter.ToUniversalTime() < now.UtcDateTime)
        {
            throw Invalid(section, "CertificatePath", $"the certificate expired on {certificate.NotAfter:u}.");
        }

        return certificate;
    }

    /// <summary>A CA certificate (PEM) from <c>{section}:{key}</c>.</summary>
    public static X509Certificate2 LoadCa(string section, string key, string path)
    {
        try
        {
            return X509Certificate2.CreateFromPem(File.ReadAllText(path));
        }
        catch (Exception ex) when (ex is CryptographicException or FormatException or IOException or UnauthorizedAccessException)
        {
            throw Invalid(section, key, $"cannot load '{path}': {ex.Message}");
        }
    }

    private static OptionsValidationException Invalid(string section, string key, string message) =>
        new(section, typeof(TlsOptions), [$"{section}:{key}: {message}"]);
}
