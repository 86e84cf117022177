using System.Text;

namespace OrleansIot.Grains.Abstractions.Policies;

/// <summary>
/// An Action or Resource pattern of a policy: AWS's wildcards (<c>*</c> any run of characters, '/' included;
/// <c>?</c> exactly one character; MQTT's <c>+</c> and <c>#</c> are plain characters), policy variables
/// (<c>${iot:ClientId}</c> …, substituted as literal text, or left as written when the value is missing or holds a
/// special character), and the escapes <c>${*}</c>, <c>${?}</c>, <c>${$}</c> for literal special characters. In a
/// Resource ARN the region and account fields match any value: one deployment is one account, and policies written
/// for AWS keep working unchanged.
/// </summary>
internal sealed class PolicyPattern
{
    private const string ArnPrefix = "arn:";

    private readonly Part[] _parts;
    private readonly bool _ignoreCase;
    private readonly bool _resourceOnly;

    private PolicyPattern(Part[] parts, bool ignoreCase, bool resourceOnly)
    {
        _parts = parts;
        _ignoreCase = ignoreCase;
        _resourceOnly = resourceOnly;
    }

    /// <summary>An Action pattern (<c>iot:Publish</c>, <c>iot:*</c>): case-insensitive, no variables.</summary>
    public static PolicyPattern Action(string text, string where)
    {
        if (!text.StartsWith("iot:", StringComparison.OrdinalIgnoreCase) && text != "*")
        {
            throw new MalformedPolicyException($"{where}: '{text}' is not an IoT action (iot:Connect, iot:Publish, iot:* ...).");
        }

        return new PolicyPattern(Compile(text, where, variables: false), ignoreCase: true, resourceOnly: false);
    }

    /// <summary>A Resource pattern: <c>*</c>, or an ARN <c>arn:aws:iot:region:account:type/name</c> (region and account match anything).</summary>
    public static PolicyPattern Resource(string text, string where)
    {
        if (text == "*")
        {
            return new PolicyPattern([new Part(PartKind.AnyRun, null)], ignoreCase: false, resourceOnly: false);
        }

        if (!text.StartsWith(ArnPrefix, StringComparison.Ordinal))
        {
            throw new MalformedPolicyException($"{where}: '{text}' is not an ARN (arn:aws:iot:region:account:type/name) or '*'.");
        }

        var fields = text.Split(':', 6);
        if (fields.Length < 6 || fields[1] is not ("aws" or "*") || fields[2] is not ("iot" or "*"))
        {
            throw new MalformedPolicyException($"{where}: '{text}' is not an AWS IoT ARN (arn:aws:iot:region:account:type/name).");
        }

        return new PolicyPattern(Compile(fields[5], where, variables: true), ignoreCase: false, resourceOnly: true);
    }

    /// <summary>A StringLike / ArnLike condition value: wildcards and variables, case-sensitive.</summary>
    public static PolicyPattern Like(string text, string where) => new(Compile(text, where, variables: true), ignoreCase: false, resourceOnly: false);

    /// <summary>Renders a condition value's variables (no wildcards): the text to compare.</summary>
    public static string Render(string text, PolicyContext context, string where)
    {
        var builder = new StringBuilder();
        foreach (var part in Compile(text, where, variables: true))
        {
            builder.Append(part.Kind switch
            {
                PartKind.AnyRun => "*",
                PartKind.AnyOne => "?",
                PartKind.Variable => context.Substitute(part.Text!) ?? "${" + part.Text + "}",
                _ => part.Text,
            });
        }

        return builder.ToString();
    }

    /// <summary>Whether the value matches. A resource is the full ARN; only the part after account is compared.</summary>
    public bool Matches(string value, PolicyContext context)
    {
        if (_resourceOnly)
        {
            var fields = value.Split(':', 6);
            if (fields.Length < 6)
            {
                return false;
            }

            value = fields[5];
        }

        // Render variables into literal text, remembering which characters are wildcards.
        var text = new StringBuilder();
        var wild = new List<PartKind>();
        foreach (var part in _parts)
        {
            switch (part.Kind)
            {
                case PartKind.AnyRun or PartKind.AnyOne:
                    text.Append('\0');
                    wild.Add(part.Kind);
                    break;
                default:
                    var literal = part.Kind == PartKind.Variable ? context.Substitute(part.Text!) ?? "${" + part.Text + "}" : part.Text!;
                    text.Append(literal);
                    wild.AddRange(Enumerable.Repeat(PartKind.Literal, literal.Length));
                    break;
            }
        }

        return Glob(text.ToString(), wild, value, _ignoreCase);
    }

    private static bool Glob(string pattern, List<PartKind> kinds, string value, bool ignoreCase)
    {
        int p = 0, v = 0, starP = -1, starV = 0;
        while (v < value.Length)
        {
            if (p < pattern.Length && kinds[p] == PartKind.AnyOne)
            {
                p++;
                v++;
            }
            else if (p < pattern.Length && kinds[p] == PartKind.Literal && Same(pattern[p], value[v], ignoreCase))
            {
                p++;
                v++;
            }
            else if (p < pattern.Length && kinds[p] == PartKind.AnyRun)
            {
                starP = p++;
                starV = v;
            }
            else if (starP >= 0)
            {
                p = starP + 1;
                v = ++starV;
            }
            else
            {
                return false;
            }
        }

        while (p < pattern.Length && kinds[p] == PartKind.AnyRun)
        {
            p++;
        }

        return p == pattern.Length;
    }

    private static bool Same(char a, char b, bool ignoreCase) => a == b || (ignoreCase && char.ToUpperInvariant(a) == char.ToUpperInvariant(b));

    private static Part[] Compile(string text, string where, bool variables)
    {
        var parts = new List<Part>();
        var literal = new StringBuilder();
        void Flush()
        {
            if (literal.Length > 0)
            {
                parts.Add(new Part(PartKind.Literal, literal.ToString()));
                literal.Clear();
            }
        }

        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (c == '*' || c == '?')
            {
                Flush();
                parts.Add(new Part(c == '*' ? PartKind.AnyRun : PartKind.AnyOne, null));
            }
            else if (c == '$' && i + 1 < text.Length && text[i + 1] == '{' && variables)
            {
                var end = text.IndexOf('}', i + 2);
                if (end < 0)
                {
                    throw new MalformedPolicyException($"{where}: '${{' in '{text}' is not closed.");
                }

                var name = text[(i + 2)..end];
                if (name is "*" or "?" or "$")
                {
                    literal.Append(name);   // an escaped special character
                }
                else
                {
                    Flush();
                    parts.Add(new Part(PartKind.Variable, name));
                }

                i = end;
            }
            else
            {
                literal.Append(c);
            }
        }

        Flush();
        return [.. parts];
    }

    private enum PartKind : byte
    {
        Literal,
        AnyRun,
        AnyOne,
        Variable,
    }

    private readonly record struct Part(PartKind Kind, string? Text);
}
