using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.FleetIndex;

/// <summary>Fleet index settings (<c>Iot:FleetIndex</c>).</summary>
public sealed class FleetIndexOptions
{
    public const string SectionName = "Iot:FleetIndex";

    /// <summary>Longest query in bytes (AWS: 1,000).</summary>
    [Range(16, 100_000)]
    public int MaxQueryLength { get; set; } = 1000;

    /// <summary>Most terms in a query (AWS: 7).</summary>
    [Range(1, 1000)]
    public int MaxQueryTerms { get; set; } = 7;

    /// <summary>
    /// How long a node uses its copy of the indexing configuration and the dynamic groups before reading them again.
    /// A change made on another node reaches this node's things within this time; a rebuild after a configuration
    /// change waits twice this long first, and a new dynamic group is checked again after twice this long.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.050", "00:05:00")]
    public TimeSpan SettingsRefresh { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How often a node writes the shadow sections its things handed over (each thing's latest only). Longer: fewer
    /// index writes for things that update often; searches still see every acknowledged update (they make every node
    /// write first), but a node that dies loses up to this much until the repair rewrites it.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "00:01:00")]
    public TimeSpan WriteBehind { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Things reindexed at once by a rebuild.</summary>
    [Range(1, 1000)]
    public int RebuildParallelism { get; set; } = 32;

    /// <summary>Most dynamic thing groups (AWS: 100).</summary>
    [Range(0, 10_000)]
    public int MaxDynamicGroups { get; set; } = 100;

    public FleetQueryLimits Limits => new(MaxQueryLength, MaxQueryTerms);
}
