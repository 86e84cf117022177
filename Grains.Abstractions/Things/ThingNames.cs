namespace OrleansIot.Grains.Abstractions.Things;

/// <summary>AWS's naming rules for things and shadows (AWS IoT Developer Guide: a thing name is 1–128 of <c>[a-zA-Z0-9:_-]</c>, a shadow name 1–64 of <c>[a-zA-Z0-9:_-]</c>).</summary>
public static class ThingNames
{
    /// <summary>Longest thing name.</summary>
    public const int MaxThingName = 128;

    /// <summary>Longest shadow name.</summary>
    public const int MaxShadowName = 64;

    /// <summary>Thing names: 1–128 of <c>[a-zA-Z0-9:_-]</c>.</summary>
    public static bool IsValidThingName(string? name) =>
        name is { Length: > 0 and <= MaxThingName } && name.All(c => char.IsAsciiLetterOrDigit(c) || c is ':' or '_' or '-');

    /// <summary>Shadow names: 1–64 of <c>[$a-zA-Z0-9:_-]</c>.</summary>
    public static bool IsValidShadowName(string? name) =>
        name is { Length: > 0 and <= MaxShadowName } && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '$' or ':' or '_' or '-');
}
