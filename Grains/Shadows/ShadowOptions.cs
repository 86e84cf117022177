using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Shadows;

/// <summary>Device shadow limits and windows (<c>Iot:Shadows</c>); defaults are AWS's.</summary>
public sealed class ShadowOptions
{
    public const string SectionName = "Iot:Shadows";

    /// <summary>Largest state (desired + reported, compact UTF-8 JSON; metadata not counted). AWS: 8 KB.</summary>
    [Range(256, 1024 * 1024)]
    public int MaxStateBytes { get; set; } = 8 * 1024;

    /// <summary>Shadow requests per second per thing (all its shadows, every API); more get 429. AWS: 20. 0 = no limit.</summary>
    [Range(0, 1_000_000)]
    public int MaxRequestsPerSecondPerThing { get; set; } = 20;

    /// <summary>How long an accepted update is remembered by its client token (a retry in this window changes nothing).</summary>
    [Range(typeof(TimeSpan), "00:00:00", "1.00:00:00")]
    public TimeSpan ClientTokenWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>How many client tokens each shadow remembers (the oldest are forgotten first).</summary>
    [Range(0, 1000)]
    public int MaxRememberedClientTokens { get; set; } = 16;

    /// <summary>How long a deleted shadow's version sequence is kept (AWS: 48 hours); after that it starts again.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "365.00:00:00")]
    public TimeSpan VersionKeptAfterDelete { get; set; } = TimeSpan.FromHours(48);
}
