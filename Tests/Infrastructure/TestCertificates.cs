using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>Certificates a device maker would have: its own CA, device certificates it issues, AWS's certificate id.</summary>
public static class TestCertificates
{
    /// <summary>AWS's certificate id: hex SHA-256 of the DER encoding.</summary>
    public static string Id(X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        return Convert.ToHexStringLower(SHA256.HashData(certificate.RawData));
    }

    /// <summary>A self-signed ECDSA P-256 CA, valid from 30 days ago for 5 years.</summary>
    public static X509Certificate2 NewCa(string name)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"CN={name}", key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        return request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-30), DateTimeOffset.UtcNow.AddYears(5));
    }

    /// <summary>A certificate <paramref name="ca"/> issues for a new ECDSA key, with that key (usable as a TLS client certificate).</summary>
    public static X509Certificate2 Issue(X509Certificate2 ca, string subject, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null) =>
        Issue(ca, new X500DistinguishedName($"CN={subject}"), notBefore, notAfter);

    /// <summary>The same for a whole subject (<c>CN=…, C=US, SERIALNUMBER=…</c>), as JITP reads it.</summary>
    public static X509Certificate2 Issue(X509Certificate2 ca, X500DistinguishedName subject, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null)
    {
        ArgumentNullException.ThrowIfNull(ca);
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(ca, true, false));
        using var issued = request.Create(ca, notBefore ?? DateTimeOffset.UtcNow.AddMinutes(-5), notAfter ?? DateTimeOffset.UtcNow.AddYears(1), RandomNumberGenerator.GetBytes(12));
        return Devices.WithKey(issued.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }
}
