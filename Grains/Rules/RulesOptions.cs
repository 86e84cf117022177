using System.ComponentModel.DataAnnotations;

namespace OrleansIot.Grains.Rules;

/// <summary>Rules engine settings (<c>Iot:Rules</c>).</summary>
public sealed class RulesOptions
{
    public const string SectionName = "Iot:Rules";

    /// <summary>
    /// How often an evaluator asks the catalog whether rules changed (one small call per partition per interval); a
    /// changed rule applies everywhere within this. Zero: before every batch (tests).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromSeconds(1);
}
