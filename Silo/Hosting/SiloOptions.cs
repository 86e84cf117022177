using System.ComponentModel.DataAnnotations;
using System.Net;

namespace OrleansIot.Silo.Hosting;

public enum StorageMode
{
    /// <summary>Embedded default: localhost clustering, state, reminders and streams in memory. Nothing is durable.</summary>
    Memory,

    /// <summary>ADO.NET clustering, grain storage, reminders and durable streams on PostgreSQL.</summary>
    Postgres,
}

/// <summary>How the silo stores things (key <c>Iot:Storage</c>).</summary>
public sealed class StorageOptions
{
    public const string SectionName = "Iot";

    public StorageMode Storage { get; set; } = StorageMode.Memory;
}

/// <summary>Orleans' own cluster settings (section <c>Orleans</c>).</summary>
public sealed class ClusterSettings : IValidatableObject
{
    public const string SectionName = "Orleans";

    /// <summary>Silos with the same cluster id (and database) form one cluster.</summary>
    [Required]
    public string ClusterId { get; set; } = "orleans-iot";

    /// <summary>Stays the same across deployments: grain state and reminders are stored under it.</summary>
    [Required]
    public string ServiceId { get; set; } = "orleans-iot";

    public EndpointSettings Endpoints { get; set; } = new();

    /// <summary>
    /// Memory mode only: the silo endpoint (ip:port) of the node that holds the development membership table, so
    /// several in-memory nodes on one machine form one cluster. Unset: this node is its own primary.
    /// </summary>
    public string? PrimarySiloEndpoint { get; set; }

    /// <summary>
    /// Running in Kubernetes (<c>Microsoft.Orleans.Hosting.Kubernetes</c>): the silo is named after its pod, takes the
    /// cluster and service ids from <c>ORLEANS_CLUSTER_ID</c> / <c>ORLEANS_SERVICE_ID</c> when set, and its agent
    /// watches the pods of the cluster (the pod's service account may list, watch and delete pods: deploy/kubernetes).
    /// </summary>
    public bool KubernetesHosting { get; set; }

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        var results = new List<ValidationResult>();
        Validator.TryValidateObject(Endpoints, new ValidationContext(Endpoints), results, validateAllProperties: true);
        foreach (var result in results)
        {
            yield return new ValidationResult(result.ErrorMessage, result.MemberNames.Select(m => $"Endpoints:{m}"));
        }

        if (PrimarySiloEndpoint is not null && !IPEndPoint.TryParse(PrimarySiloEndpoint, out _))
        {
            yield return new ValidationResult($"'{PrimarySiloEndpoint}' is not an ip:port endpoint.", [nameof(PrimarySiloEndpoint)]);
        }

        if (!IPAddress.TryParse(Endpoints.AdvertisedIPAddress, out _))
        {
            yield return new ValidationResult($"'{Endpoints.AdvertisedIPAddress}' is not an IP address.", ["Endpoints:AdvertisedIPAddress"]);
        }
    }
}

public sealed class EndpointSettings
{
    /// <summary>Silo-to-silo port.</summary>
    [Range(1, 65535)]
    public int SiloPort { get; set; } = 11111;

    /// <summary>Port for external Orleans clients (backend services).</summary>
    [Range(1, 65535)]
    public int GatewayPort { get; set; } = 30000;

    /// <summary>The address other silos and clients reach this silo at.</summary>
    public string AdvertisedIPAddress { get; set; } = "127.0.0.1";

    /// <summary>
    /// The address the silo and gateway ports listen on. Unset: <c>Iot:BindAddress</c>'s (<c>localhost</c> is
    /// 127.0.0.1, <c>*</c> every interface), so that nothing of the cluster's is reachable from further than the
    /// node's other ports. The gateway port takes Orleans clients, who call grains directly, past API keys,
    /// policies and the audit log: open it beyond the machine only with <c>Orleans:Tls</c>.
    /// </summary>
    public string? ListenAddress { get; set; }
}

/// <summary>
/// TLS between silos and for Orleans clients (section <c>Orleans:Tls</c>): every silo presents this certificate and
/// accepts only peers (and, with <see cref="RequireClientCertificate"/>, clients) whose certificate chains to
/// <see cref="CaCertificatePath"/>. Off unless <see cref="CertificatePath"/> is set.
/// </summary>
public sealed class SiloTlsSettings : IValidatableObject
{
    public const string SectionName = "Orleans:Tls";

    /// <summary>PEM certificate (chain) or a .pfx/.p12 file, with its private key.</summary>
    public string? CertificatePath { get; set; }

    /// <summary>PEM private key, when <see cref="CertificatePath"/> is PEM.</summary>
    public string? KeyPath { get; set; }

    /// <summary>Password of a PKCS#12 file.</summary>
    public string? CertificatePassword { get; set; }

    /// <summary>The CA (PEM) that issued the cluster's certificates: peers and clients must chain to it.</summary>
    public string? CaCertificatePath { get; set; }

    /// <summary>Orleans clients (backend services) must present a certificate of that CA too.</summary>
    public bool RequireClientCertificate { get; set; } = true;

    public bool Enabled => !string.IsNullOrWhiteSpace(CertificatePath);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (Enabled && string.IsNullOrWhiteSpace(CaCertificatePath))
        {
            yield return new ValidationResult("is required with Orleans:Tls:CertificatePath (the CA the cluster's certificates chain to).", [nameof(CaCertificatePath)]);
        }
    }
}
