using System.Text.Json;

namespace OrleansIot.Grains.Abstractions.Policies;

/// <summary>What a policy says about a request.</summary>
public enum PolicyDecision
{
    /// <summary>No statement allows it (AWS: default deny).</summary>
    ImplicitDeny,

    /// <summary>A statement allows it and none denies it.</summary>
    Allow,

    /// <summary>A statement denies it (wins over any Allow).</summary>
    ExplicitDeny,
}

/// <summary>
/// An AWS IoT policy document, parsed and compiled once: <c>{"Version": "2012-10-17", "Statement": [{"Effect",
/// "Action", "Resource", "Condition"}]}</c>. Parse errors are <see cref="MalformedPolicyException"/> with AWS's
/// meaning (the document is refused, nothing stored).
/// </summary>
public sealed class IotPolicy
{
    /// <summary>AWS's limit: 2048 characters, not counting whitespace.</summary>
    public const int MaxCharacters = 2048;

    private IotPolicy(IReadOnlyList<PolicyStatement> statements) => Statements = statements;

    /// <summary>The statements, in document order.</summary>
    public IReadOnlyList<PolicyStatement> Statements { get; }

    /// <summary>Whether a statement's condition reads the time of the request (such decisions must not be cached).</summary>
    public bool ReadsTime => Statements.Any(s => s.ReadsTime);

    /// <summary>Parses and compiles a policy document.</summary>
    /// <exception cref="MalformedPolicyException">The document is not a valid IoT policy.</exception>
    public static IotPolicy Parse(string document)
    {
        ArgumentNullException.ThrowIfNull(document);
        if (document.Count(c => !char.IsWhiteSpace(c)) > MaxCharacters)
        {
            throw new MalformedPolicyException($"The policy document is longer than {MaxCharacters} characters (whitespace not counted).");
        }

        JsonElement root;
        try
        {
            using var parsed = JsonDocument.Parse(document, new JsonDocumentOptions { MaxDepth = 16 });
            root = parsed.RootElement.Clone();
        }
        catch (JsonException ex)
        {
            throw new MalformedPolicyException($"The policy document is not JSON: {ex.Message}");
        }

        if (root.ValueKind != JsonValueKind.Object)
        {
            throw new MalformedPolicyException("The policy document must be a JSON object.");
        }

        JsonElement? statements = null;
        foreach (var property in root.EnumerateObject())
        {
            switch (property.Name)
            {
                case "Version":
                    if (property.Value.ValueKind != JsonValueKind.String || property.Value.GetString() is not ("2012-10-17" or "2008-10-17"))
                    {
                        throw new MalformedPolicyException("Version must be \"2012-10-17\" (or \"2008-10-17\").");
                    }

                    break;
                case "Id":
                    break;
                case "Statement":
                    statements = property.Value;
                    break;
                default:
                    throw new MalformedPolicyException($"Unknown field '{property.Name}' in the policy document.");
            }
        }

        var list = statements switch
        {
            { ValueKind: JsonValueKind.Array } array => array.EnumerateArray().ToList(),
            { ValueKind: JsonValueKind.Object } single => [single],
            _ => throw new MalformedPolicyException("Statement is required: a statement object or an array of them."),
        };
        if (list.Count == 0)
        {
            throw new MalformedPolicyException("Statement must not be empty.");
        }

        return new IotPolicy([.. list.Select((s, i) => PolicyStatement.Parse(s, i))]);
    }

    /// <summary>This policy's own decision on a request (see <see cref="PolicyEvaluator"/> for several policies).</summary>
    public PolicyDecision Evaluate(string action, string resource, PolicyContext context)
    {
        var decision = PolicyDecision.ImplicitDeny;
        foreach (var statement in Statements)
        {
            if (!statement.Applies(action, resource, context))
            {
                continue;
            }

            if (statement.Deny)
            {
                return PolicyDecision.ExplicitDeny;
            }

            decision = PolicyDecision.Allow;
        }

        return decision;
    }
}

/// <summary>Combines the policies that apply to an identity: default deny, and an explicit deny in any of them wins.</summary>
public static class PolicyEvaluator
{
    /// <summary>The decision of all <paramref name="policies"/> together on one request.</summary>
    public static PolicyDecision Evaluate(IEnumerable<IotPolicy> policies, string action, string resource, PolicyContext context)
    {
        ArgumentNullException.ThrowIfNull(policies);
        var decision = PolicyDecision.ImplicitDeny;
        foreach (var policy in policies)
        {
            switch (policy.Evaluate(action, resource, context))
            {
                case PolicyDecision.ExplicitDeny:
                    return PolicyDecision.ExplicitDeny;
                case PolicyDecision.Allow:
                    decision = PolicyDecision.Allow;
                    break;
            }
        }

        return decision;
    }
}

/// <summary>A policy document AWS would refuse (<c>MalformedPolicyException</c>, HTTP 400).</summary>
public sealed class MalformedPolicyException(string message) : Exception(message);
