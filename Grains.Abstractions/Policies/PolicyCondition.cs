using System.Globalization;
using System.Net;
using System.Text.Json;

namespace OrleansIot.Grains.Abstractions.Policies;

/// <summary>
/// One condition of a statement: an IAM operator over one key and its values. Several values of one key: any may
/// match (negated operators: none may). Keys and operators of one Condition block must all hold. A key the request
/// does not have: false, true for negated operators and with <c>IfExists</c>; <c>Null</c> tests for that. Multi-valued
/// keys take <c>ForAnyValue:</c> (some value matches; default) or <c>ForAllValues:</c> (every value matches; true when
/// there are none).
/// </summary>
internal sealed class PolicyCondition
{
    private static readonly string[] Operators =
    [
        "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", "StringLike", "StringNotLike",
        "NumericEquals", "NumericNotEquals", "NumericLessThan", "NumericLessThanEquals", "NumericGreaterThan", "NumericGreaterThanEquals",
        "DateEquals", "DateNotEquals", "DateLessThan", "DateLessThanEquals", "DateGreaterThan", "DateGreaterThanEquals",
        "Bool", "Null", "IpAddress", "NotIpAddress", "ArnEquals", "ArnNotEquals", "ArnLike", "ArnNotLike",
    ];

    private readonly string _operator;
    private readonly string _key;
    private readonly string[] _values;
    private readonly bool _ifExists;
    private readonly bool _forAll;
    private readonly bool _negated;
    private readonly string _where;

    private PolicyCondition(string op, string key, string[] values, bool ifExists, bool forAll, string where)
    {
        _operator = op;
        _key = key;
        _values = values;
        _ifExists = ifExists;
        _forAll = forAll;
        _negated = op.Contains("Not", StringComparison.Ordinal);
        _where = where;
    }

    /// <summary>Whether the condition reads the time of the request (<c>aws:CurrentTime</c>, <c>aws:EpochTime</c>).</summary>
    public bool ReadsTime => _key is "aws:CurrentTime" or "aws:EpochTime";

    public static PolicyCondition[] Parse(JsonElement block, string where)
    {
        if (block.ValueKind != JsonValueKind.Object)
        {
            throw new MalformedPolicyException($"{where} must be an object of operators.");
        }

        var conditions = new List<PolicyCondition>();
        foreach (var op in block.EnumerateObject())
        {
            var name = op.Name;
            var forAll = false;
            if (name.StartsWith("ForAllValues:", StringComparison.Ordinal))
            {
                (forAll, name) = (true, name["ForAllValues:".Length..]);
            }
            else if (name.StartsWith("ForAnyValue:", StringComparison.Ordinal))
            {
                name = name["ForAnyValue:".Length..];
            }

            var ifExists = name.EndsWith("IfExists", StringComparison.Ordinal) && name != "Null";
            if (ifExists)
            {
                name = name[..^"IfExists".Length];
            }

            if (!Operators.Contains(name, StringComparer.Ordinal))
            {
                throw new MalformedPolicyException($"{where}: unknown condition operator '{op.Name}'.");
            }

            if (op.Value.ValueKind != JsonValueKind.Object)
            {
                throw new MalformedPolicyException($"{where}.{op.Name} must map condition keys to values.");
            }

            foreach (var key in op.Value.EnumerateObject())
            {
                var values = key.Value.ValueKind switch
                {
                    JsonValueKind.String => [key.Value.GetString()!],
                    JsonValueKind.True or JsonValueKind.False => [key.Value.GetBoolean() ? "true" : "false"],
                    JsonValueKind.Number => [key.Value.GetRawText()],
                    JsonValueKind.Array => key.Value.EnumerateArray().Select(v => v.ValueKind switch
                    {
                        JsonValueKind.String => v.GetString()!,
                        JsonValueKind.True => "true",
                        JsonValueKind.False => "false",
                        JsonValueKind.Number => v.GetRawText(),
                        _ => throw new MalformedPolicyException($"{where}.{op.Name}.{key.Name}: values are strings, numbers or booleans."),
                    }).ToArray(),
                    _ => throw new MalformedPolicyException($"{where}.{op.Name}.{key.Name}: values are strings, numbers or booleans."),
                };
                if (values.Length == 0)
                {
                    throw new MalformedPolicyException($"{where}.{op.Name}.{key.Name} has no values.");
                }

                var condition = new PolicyCondition(name, key.Name, values, ifExists, forAll, $"{where}.{op.Name}.{key.Name}");
                condition.CheckValues();
                conditions.Add(condition);
            }
        }

        return [.. conditions];
    }

    public bool Holds(PolicyContext context)
    {
        var actual = context.Values(_key);
        if (_operator == "Null")
        {
            var wantsMissing = _values.Any(v => string.Equals(v, "true", StringComparison.OrdinalIgnoreCase));
            return wantsMissing == (actual is null || actual.Count == 0);
        }

        if (actual is null || actual.Count == 0)
        {
            return _forAll || _ifExists || _negated;
        }

        return _forAll ? actual.All(v => Matches(v, context)) : actual.Any(v => Matches(v, context));
    }

    /// <summary>One request value against the condition's values: any matches; for negated operators, none of the positive form does.</summary>
    private bool Matches(string actual, PolicyContext context)
    {
        var positive = _values.Any(expected => Positive(actual, expected, context));
        return _negated ? !positive : positive;
    }

    private bool Positive(string actual, string expected, PolicyContext context)
    {
        var op = _operator.Replace("Not", "", StringComparison.Ordinal);
        switch (op)
        {
            case "StringEquals":
            case "ArnEquals":
                return actual == PolicyPattern.Render(expected, context, _where);
            case "StringEqualsIgnoreCase":
                return string.Equals(actual, PolicyPattern.Render(expected, context, _where), StringComparison.OrdinalIgnoreCase);
            case "StringLike":
            case "ArnLike":
                return PolicyPattern.Like(expected, _where).Matches(actual, context);
            case "Bool":
                return bool.TryParse(actual, out var a) && bool.TryParse(expected, out var e) && a == e;
            case "IpAddress":
                return IPAddress.TryParse(actual, out var ip) && IPNetwork.TryParse(expected.Contains('/', StringComparison.Ordinal) ? expected : expected + (expected.Contains(':', StringComparison.Ordinal) ? "/128" : "/32"), out var network) && network.Contains(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip);
        }

        if (op.StartsWith("Numeric", StringComparison.Ordinal))
        {
            return decimal.TryParse(actual, NumberStyles.Float, CultureInfo.InvariantCulture, out var x) && decimal.TryParse(expected, NumberStyles.Float, CultureInfo.InvariantCulture, out var y)
                && Compare(op["Numeric".Length..], x.CompareTo(y));
        }

        // Dates: ISO 8601 or epoch seconds.
        return Date(actual) is { } left && Date(expected) is { } right && Compare(op["Date".Length..], left.CompareTo(right));
    }

    private static bool Compare(string how, int order) => how switch
    {
        "Equals" => order == 0,
        "LessThan" => order < 0,
        "LessThanEquals" => order <= 0,
        "GreaterThan" => order > 0,
        _ => order >= 0,
    };

    private static DateTimeOffset? Date(string text) =>
        long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var epoch) ? DateTimeOffset.FromUnixTimeSeconds(epoch)
        : DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var date) ? date
        : null;

    /// <summary>Values that can never be read are refused when the policy is created, not silently false.</summary>
    private void CheckValues()
    {
        foreach (var value in _values)
        {
            var ok = _operator switch
            {
                "Bool" or "Null" => bool.TryParse(value, out _),
                "IpAddress" or "NotIpAddress" => IPNetwork.TryParse(value.Contains('/', StringComparison.Ordinal) ? value : value + (value.Contains(':', StringComparison.Ordinal) ? "/128" : "/32"), out _),
                _ when _operator.StartsWith("Numeric", StringComparison.Ordinal) => decimal.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out _),
                _ when _operator.StartsWith("Date", StringComparison.Ordinal) => Date(value) is not null,
                _ => true,
            };
            if (!ok)
            {
                throw new MalformedPolicyException($"{_where}: '{value}' is not a valid value for {_operator}.");
            }
        }
    }
}
