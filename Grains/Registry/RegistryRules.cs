using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Grains.Registry;

/// <summary>AWS's registry naming rules and limits (AWS IoT Developer Guide, registry; AWS IoT Core service quotas), pure.</summary>
internal static class RegistryRules
{
    public const int MaxAttributesWithoutType = 3;
    public const int MaxAttributesWithType = 50;
    public const int MaxGroupAttributes = 50;
    public const int MaxAttributeName = 128;
    public const int MaxAttributeValue = 800;
    public const int MaxSearchableAttributes = 3;
    public const int MaxGroupDepth = 7;
    public const int MaxGroupsPerThing = 10;
    public const int MaxDescription = 2028;

    /// <summary>Thing, thing type and thing group names: 1–128 of <c>[a-zA-Z0-9:_-]</c>.</summary>
    public static void Name(string kind, string name)
    {
        if (!ThingNames.IsValidThingName(name))
        {
            throw ApiException.Invalid($"{kind} name '{Shorten(name)}' is invalid: 1 to 128 characters of a-z, A-Z, 0-9, ':', '_' and '-'.");
        }
    }

    /// <summary>Attribute names <c>[a-zA-Z0-9_.,@/:#-]+</c> (≤128), values <c>[a-zA-Z0-9_.,@/:#=\[\]-]*</c> (≤800).</summary>
    public static void Attributes(IReadOnlyDictionary<string, string>? attributes)
    {
        foreach (var (name, value) in attributes ?? new Dictionary<string, string>())
        {
            if (name.Length is 0 or > MaxAttributeName || !name.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or ',' or '@' or '/' or ':' or '#' or '-'))
            {
                throw ApiException.Invalid($"Attribute name '{Shorten(name)}' is invalid: 1 to 128 characters of a-z, A-Z, 0-9 and _.,@/:#-");
            }

            if (value is null || value.Length > MaxAttributeValue || !value.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or ',' or '@' or '/' or ':' or '#' or '=' or '[' or ']' or '-'))
            {
                throw ApiException.Invalid($"The value of attribute '{name}' is invalid: up to 800 characters of a-z, A-Z, 0-9 and _.,@/:#=[]-");
            }
        }
    }

    /// <summary>3 attributes without a thing type, 50 with one (AWS).</summary>
    public static void AttributeCount(int count, bool typed)
    {
        var limit = typed ? MaxAttributesWithType : MaxAttributesWithoutType;
        if (count > limit)
        {
            throw ApiException.Invalid(typed
                ? $"A thing can have at most {MaxAttributesWithType} attributes; this one would have {count}."
                : $"A thing without a thing type can have at most {MaxAttributesWithoutType} attributes; this one would have {count}.");
        }
    }

    public static void Description(string? description)
    {
        if (description is { Length: > MaxDescription })
        {
            throw ApiException.Invalid($"The description is longer than {MaxDescription} characters.");
        }
    }

    /// <summary>
    /// AWS <c>attributePayload</c>: with merge, the given attributes are added or changed and an empty value removes
    /// one; without, they replace all attributes.
    /// </summary>
    public static Dictionary<string, string> Apply(IReadOnlyDictionary<string, string> current, AttributePayload? payload)
    {
        if (payload?.Attributes is not { } given)
        {
            return new Dictionary<string, string>(current, StringComparer.Ordinal);
        }

        var result = payload.Merge ? new Dictionary<string, string>(current, StringComparer.Ordinal) : new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (name, value) in given)
        {
            if (value.Length == 0)
            {
                result.Remove(name);
            }
            else
            {
                result[name] = value;
            }
        }

        return result;
    }

    public static bool SameAttributes(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);

    public static int PageSize(int maxResults, int limit = 250) => maxResults switch
    {
        0 => limit,
        < 1 => throw ApiException.Invalid($"maxResults must be between 1 and {limit}."),
        _ when maxResults > limit => throw ApiException.Invalid($"maxResults must be between 1 and {limit}."),
        _ => maxResults,
    };

    private static string Shorten(string value) => value.Length <= 64 ? value : value[..64] + "...";
}
