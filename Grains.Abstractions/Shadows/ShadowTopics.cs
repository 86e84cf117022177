namespace OrleansIot.Grains.Abstractions.Shadows;

/// <summary>The three shadow operations.</summary>
public enum ShadowOperation
{
    /// <summary><c>/get</c></summary>
    Get,
    /// <summary><c>/update</c></summary>
    Update,
    /// <summary><c>/delete</c></summary>
    Delete,
}

/// <summary>
/// A parsed shadow topic: <c>$aws/things/{thing}/shadow[/name/{shadow}]/{get|update|delete}[/{suffix}]</c>, where a
/// suffix (<c>accepted</c>, <c>rejected</c>, <c>delta</c>, <c>documents</c>) makes it a response topic.
/// </summary>
/// <param name="ThingName">The thing.</param>
/// <param name="ShadowName">The named shadow, or <c>null</c> for the classic one.</param>
/// <param name="Operation">The operation.</param>
/// <param name="Suffix">Empty for a request topic.</param>
public readonly record struct ShadowTopic(string ThingName, string? ShadowName, ShadowOperation Operation, string Suffix)
{
    /// <summary>True for the request topics devices publish to (no suffix).</summary>
    public bool IsRequest => Suffix.Length == 0;
}

/// <summary>Shadow topic names (AWS reserved topics: <c>$aws/things/{thing}/shadow[/name/{shadow}]/{get|update|delete}[/accepted|/rejected|/delta|/documents]</c>): built and parsed here only.</summary>
public static class ShadowTopics
{
    /// <summary>Every shadow topic starts with this (and is a thing topic).</summary>
    public const string ThingsPrefix = "$aws/things/";

    /// <summary>The topic prefix of a shadow: <c>$aws/things/{thing}/shadow</c> or <c>…/shadow/name/{shadow}</c>.</summary>
    public static string Prefix(string thingName, string? shadowName) => shadowName is null
        ? $"{ThingsPrefix}{thingName}/shadow"
        : $"{ThingsPrefix}{thingName}/shadow/name/{shadowName}";

    /// <summary>A response topic, e.g. <c>…/update/accepted</c>.</summary>
    public static string Response(string thingName, string? shadowName, ShadowOperation operation, string suffix) =>
        $"{Prefix(thingName, shadowName)}/{Name(operation)}/{suffix}";

    /// <summary>The operation's topic level.</summary>
    public static string Name(ShadowOperation operation) => operation switch
    {
        ShadowOperation.Get => "get",
        ShadowOperation.Update => "update",
        _ => "delete",
    };

    /// <summary>
    /// Parses a topic under <c>$aws/things/{thing}/shadow</c>. False for any other topic, including other thing
    /// topics (jobs, …) and shadow-like topics with unknown levels; the names are not validated here.
    /// </summary>
    public static bool TryParse(string topic, out ShadowTopic parsed)
    {
        parsed = default;
        if (!topic.StartsWith(ThingsPrefix, StringComparison.Ordinal))
        {
            return false;
        }

        var levels = topic[ThingsPrefix.Length..].Split('/');
        // thing / shadow / [name / {shadow} /] op [/ suffix]
        if (levels.Length < 3 || levels[1] != "shadow")
        {
            return false;
        }

        var at = 2;
        string? shadowName = null;
        if (levels[2] == "name")
        {
            if (levels.Length < 5)
            {
                return false;
            }

            shadowName = levels[3];
            at = 4;
        }

        ShadowOperation operation;
        switch (levels[at])
        {
            case "get": operation = ShadowOperation.Get; break;
            case "update": operation = ShadowOperation.Update; break;
            case "delete": operation = ShadowOperation.Delete; break;
            default: return false;
        }

        var rest = levels.Length - at - 1;
        if (rest > 1)
        {
            return false;
        }

        var suffix = rest == 1 ? levels[at + 1] : "";
        if (suffix.Length > 0 && !IsResponseSuffix(operation, suffix))
        {
            return false;
        }

        parsed = new ShadowTopic(levels[0], shadowName, operation, suffix);
        return true;
    }

    private static bool IsResponseSuffix(ShadowOperation operation, string suffix) => suffix switch
    {
        "accepted" or "rejected" => true,
        "delta" or "documents" => operation == ShadowOperation.Update,
        _ => false,
    };
}
