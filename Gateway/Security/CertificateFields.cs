using System.Security.Cryptography.X509Certificates;

namespace OrleansIot.Gateway.Security;

/// <summary>
/// A client certificate's fields under AWS's names for the <c>iot:Certificate.*</c> policy variables:
/// <c>Subject.CommonName</c>, <c>Issuer.Organization</c>, <c>Subject.AlternativeName.DNSName</c>, <c>SerialNumber</c> …
/// </summary>
internal static class CertificateFields
{
    private static readonly Dictionary<string, string> Attributes = new(StringComparer.Ordinal)
    {
        ["2.5.4.46"] = "DistinguishedNameQualifier",
        ["2.5.4.6"] = "Country",
        ["2.5.4.10"] = "Organization",
        ["2.5.4.11"] = "OrganizationalUnit",
        ["2.5.4.8"] = "State",
        ["2.5.4.3"] = "CommonName",
        ["2.5.4.5"] = "SerialNumber",
        ["2.5.4.12"] = "Title",
        ["2.5.4.4"] = "Surname",
        ["2.5.4.42"] = "GivenName",
        ["2.5.4.43"] = "Initials",
        ["2.5.4.65"] = "Pseudonym",
        ["2.5.4.44"] = "GenerationQualifier",
    };

    public static IReadOnlyDictionary<string, IReadOnlyList<string>> Of(X509Certificate2 certificate)
    {
        var fields = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        void Add(string name, string? value)
        {
            if (value is null)
            {
                return;
            }

            if (!fields.TryGetValue(name, out var values))
            {
                fields[name] = values = [];
            }

            values.Add(value);
        }

        foreach (var (prefix, dn) in new[] { ("Subject", certificate.SubjectName), ("Issuer", certificate.IssuerName) })
        {
            foreach (var rdn in dn.EnumerateRelativeDistinguishedNames())
            {
                if (!rdn.HasMultipleElements && rdn.GetSingleElementType().Value is { } oid && Attributes.TryGetValue(oid, out var name))
                {
                    Add($"{prefix}.{name}", rdn.GetSingleElementValue());
                }
            }
        }

        if (certificate.Extensions.OfType<X509SubjectAlternativeNameExtension>().FirstOrDefault() is { } alternative)
        {
            foreach (var dns in alternative.EnumerateDnsNames())
            {
                Add("Subject.AlternativeName.DNSName", dns);
            }

            foreach (var ip in alternative.EnumerateIPAddresses())
            {
                Add("Subject.AlternativeName.IPAddress", ip.ToString());
            }
        }

        Add("SerialNumber", certificate.SerialNumber);
        return fields.ToDictionary(f => f.Key, f => (IReadOnlyList<string>)f.Value, StringComparer.Ordinal);
    }
}
