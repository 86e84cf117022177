using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Provisioning;

/// <summary>Fleet provisioning (section <c>Iot:Provisioning</c>).</summary>
public sealed class ProvisioningOptions
{
    public const string SectionName = "Iot:Provisioning";

    /// <summary>
    /// How long a certificate made by <c>$aws/certificates/create…</c> waits for RegisterThing with its ownership
    /// token (AWS: one hour); a certificate still unused then is deleted.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan OwnershipTokenLifetime { get; set; } = TimeSpan.FromHours(1);
}
