using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Grains.Certificates;

/// <summary>PEM loading and checks shared by certificate registration paths.</summary>
internal static class CertificatePem
{
    public static X509Certificate2 Load(string pem, string field)
    {
        try
        {
            return X509Certificate2.CreateFromPem(pem);
        }
        catch (Exception ex) when (ex is CryptographicException or ArgumentException)
        {
            throw ApiException.Invalid($"{field} is not a PEM certificate: {ex.Message}");
        }
    }

    /// <summary>Refuses an expired or not-yet-valid certificate.</summary>
    public static void CheckValid(X509Certificate2 certificate, string field, DateTimeOffset now)
    {
        if (now < certificate.NotBefore.ToUniversalTime() || now > certificate.NotAfter.ToUniversalTime())
        {
            throw new ApiException(400, "CertificateValidationException", $"{field} is not valid now (valid {certificate.NotBefore:O} to {certificate.NotAfter:O}).");
        }
    }

    /// <summary>True when <paramref name="certificate"/> chains to <paramref name="issuer"/> (its signature checked).</summary>
    public static bool IssuedBy(X509Certificate2 certificate, X509Certificate2 issuer)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(issuer);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationFlags = X509VerificationFlags.IgnoreNotTimeValid | X509VerificationFlags.IgnoreWrongUsage;
        return chain.Build(certificate) && chain.ChainElements.Count >= 2 && chain.ChainElements[^1].Certificate.Thumbprint == issuer.Thumbprint;
    }
}
