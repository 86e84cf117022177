using System.Text.Json;

namespace OrleansIot.Grains.Abstractions.Policies;

/// <summary>One statement: Allow or Deny, which actions on which resources, under which conditions.</summary>
public sealed class PolicyStatement
{
    private readonly PolicyPattern[] _actions;
    private readonly PolicyPattern[] _resources;
    private readonly PolicyCondition[] _conditions;

    private PolicyStatement(bool deny, PolicyPattern[] actions, PolicyPattern[] resources, PolicyCondition[] conditions)
    {
        Deny = deny;
        _actions = actions;
        _resources = resources;
        _conditions = conditions;
    }

    /// <summary>True for <c>"Effect": "Deny"</c>.</summary>
    public bool Deny { get; }

    /// <summary>Whether a condition reads the time of the request: its decisions may change by themselves.</summary>
    public bool ReadsTime => _conditions.Any(c => c.ReadsTime);

    internal static PolicyStatement Parse(JsonElement statement, int index)
    {
        var where = $"Statement[{index}]";
        if (statement.ValueKind != JsonValueKind.Object)
        {
            throw new MalformedPolicyException($"{where} must be an object.");
        }

        bool? deny = null;
        PolicyPattern[]? actions = null;
        PolicyPattern[]? resources = null;
        PolicyCondition[] conditions = [];
        foreach (var property in statement.EnumerateObject())
        {
            switch (property.Name)
            {
                case "Sid":
                    break;
                case "Effect":
                    deny = property.Value.ValueKind == JsonValueKind.String ? property.Value.GetString() switch
                    {
                        "Allow" => false,
                        "Deny" => true,
                        _ => null,
                    } : null;
                    if (deny is null)
                    {
                        throw new MalformedPolicyException($"{where}.Effect must be \"Allow\" or \"Deny\".");
                    }

                    break;
                case "Action":
                    actions = [.. Strings(property.Value, $"{where}.Action").Select(a => PolicyPattern.Action(a, $"{where}.Action"))];
                    break;
                case "Resource":
                    resources = [.. Strings(property.Value, $"{where}.Resource").Select(r => PolicyPattern.Resource(r, $"{where}.Resource"))];
                    break;
                case "Condition":
                    conditions = PolicyCondition.Parse(property.Value, $"{where}.Condition");
                    break;
                default:
                    throw new MalformedPolicyException($"Unknown field '{property.Name}' in {where} (AWS IoT policies have Sid, Effect, Action, Resource, Condition).");
            }
        }

        return new PolicyStatement(
            deny ?? throw new MalformedPolicyException($"{where}.Effect is required."),
            actions ?? throw new MalformedPolicyException($"{where}.Action is required."),
            resources ?? throw new MalformedPolicyException($"{where}.Resource is required."),
            conditions);
    }

    /// <summary>True when the statement covers this action on this resource and its conditions hold.</summary>
    public bool Applies(string action, string resource, PolicyContext context)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (!_actions.Any(a => a.Matches(action, context)) || !_resources.Any(r => r.Matches(resource, context)))
        {
            return false;
        }

        foreach (var condition in _conditions)
        {
            if (!condition.Holds(context))
            {
                return false;
            }
        }

        return true;
    }

    internal static List<string> Strings(JsonElement value, string where)
    {
        var list = value.ValueKind switch
        {
            JsonValueKind.String => [value.GetString()!],
            JsonValueKind.Array => value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String
                ? e.GetString()!
                : throw new MalformedPolicyException($"{where} must hold strings.")).ToList(),
            _ => throw new MalformedPolicyException($"{where} must be a string or an array of strings."),
        };
        return list.Count == 0 || list.Any(s => s.Length == 0)
            ? throw new MalformedPolicyException($"{where} must not be empty.")
            : list;
    }
}
