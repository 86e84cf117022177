using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Abstractions.Registry;

/// <summary>Registry settings (<c>Iot:Registry</c>).</summary>
public sealed class RegistryOptions
{
    /// <summary>The configuration section.</summary>
    public const string SectionName = "Iot:Registry";

    /// <summary>
    /// Publish AWS registry events (<c>$aws/events/thing/…</c>, <c>thingType</c>, <c>thingGroup</c>,
    /// <c>thingGroupMembership</c>). Off by default, as AWS (enabled there with UpdateEventConfigurations).
    /// </summary>
    public bool PublishEvents { get; set; }

    /// <summary>The account id in ARNs and events (AWS's 12 digits; ours is one installation).</summary>
    [RegularExpression("^[0-9]{12}$")]
    public string AccountId { get; set; } = "000000000000";

    /// <summary>The region in ARNs.</summary>
    [RegularExpression("^[a-z0-9-]{1,32}$")]
    public string Region { get; set; } = "local";

    /// <summary>How long a thing type must have been deprecated before it can be deleted (AWS: 5 minutes).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan ThingTypeDeleteDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The ARN of a registry resource, e.g. <c>thing/{name}</c>.</summary>
    public string Arn(string resource) => $"arn:aws:iot:{Region}:{AccountId}:{resource}";
}
