using System.Globalization;
using System.Text;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Grains.FleetIndex;

/// <summary>A parsed fleet-indexing query: a tree both stores evaluate (in memory, or translated to parameterised SQL).</summary>
public abstract record QueryNode;

/// <summary>Every thing (<c>*</c> alone).</summary>
public sealed record AllNode : QueryNode;

public sealed record AndNode(IReadOnlyList<QueryNode> Items) : QueryNode;

public sealed record OrNode(IReadOnlyList<QueryNode> Items) : QueryNode;

public sealed record NotNode(QueryNode Item) : QueryNode;

public enum TermKind
{
    /// <summary>The value equals the term (case-insensitive); a numeric or boolean term also matches that number or boolean.</summary>
    Exact,

    /// <summary>The value's text matches <see cref="TermNode.Text"/> as a SQL LIKE pattern (backslash escapes).</summary>
    Wildcard,

    /// <summary>The field is present (<c>field:*</c>).</summary>
    Exists,
}

/// <summary>A term on a field, or on every registry and shadow value when <see cref="Field"/> is null. Text is lower case.</summary>
public sealed record TermNode(string? Field, TermKind Kind, string Text) : QueryNode
{
    /// <summary>The term as a number, when it is one (it then also matches numeric values).</summary>
    public double? Number => Kind == TermKind.Exact && FleetValue.TryNumber(Text, out var n) ? n : null;
}

/// <summary>A bound of a range; <see cref="Number"/> when the range compares numbers.</summary>
public sealed record RangeBound(string Text, double? Number, bool Inclusive);

/// <summary>
/// A range or comparison on a field. Numeric when every given bound is a number (numbers and numeric strings
/// compare), otherwise lexical (strings compare by code point, in lower case). A missing bound is open.
/// </summary>
public sealed record RangeNode(string? Field, RangeBound? Low, RangeBound? High) : QueryNode
{
    public bool Numeric => (Low is null || Low.Number is not null) && (High is null || High.Number is not null);
}

/// <summary>Limits on a query (AWS's: 1,000 bytes, 7 terms, 2 <c>*</c> and 5 <c>?</c> per term).</summary>
public sealed record FleetQueryLimits(int MaxLength = 1000, int MaxTerms = 7, int MaxStarsPerTerm = 2, int MaxQuestionMarksPerTerm = 5)
{
    public static FleetQueryLimits Aws { get; } = new();
}

/// <summary>
/// AWS's fleet-indexing query language (Lucene-like): <c>field:value</c>, phrases, <c>*</c> and <c>?</c> wildcards
/// (not leading), ranges <c>[a TO b]</c> / <c>{a TO b}</c> (mixed brackets, <c>*</c> for open), comparisons
/// <c>field&lt;5</c>, <c>AND</c> / <c>OR</c> / <c>NOT</c> (default AND), <c>-</c> exclusion, grouping and field
/// grouping <c>field:(a OR b)</c>, existence <c>field:*</c>, backslash escapes. Field names are case-sensitive,
/// values are not. Errors are <c>InvalidQueryException</c> with the position (1-based) where parsing stopped.
/// </summary>
public sealed class FleetQuery
{
    private readonly string _text;
    private readonly FleetQueryLimits _limits;
    private int _pos;
    private int _terms;

    private FleetQuery(string text, FleetQueryLimits limits)
    {
        _text = text;
        _limits = limits;
    }

    /// <summary>The query text as given.</summary>
    public required string Text { get; init; }

    public required QueryNode Root { get; init; }

    /// <summary>Fields the query names (for checking them against what is indexed).</summary>
    public required IReadOnlyList<string> Fields { get; init; }

    public static FleetQuery Parse(string? text, FleetQueryLimits? limits = null)
    {
        limits ??= FleetQueryLimits.Aws;
        if (string.IsNullOrWhiteSpace(text))
        {
            throw Invalid("The query string is empty.");
        }

        if (Encoding.UTF8.GetByteCount(text) > limits.MaxLength)
        {
            throw Invalid($"The query string is longer than {limits.MaxLength} bytes.");
        }

        var parser = new FleetQuery(text, limits) { Text = text, Root = new AllNode(), Fields = [] };
        var root = parser.ParseOr(null);
        parser.SkipSpace();
        if (parser._pos < text.Length)
        {
            throw parser.Error(text[parser._pos] == ')' ? "Unbalanced ')'" : $"Unexpected '{text[parser._pos]}'");
        }

        var fields = new List<string>();
        Collect(root, fields);
        return new FleetQuery(text, limits) { Text = text, Root = root, Fields = fields };
    }

    private static void Collect(QueryNode node, List<string> fields)
    {
        switch (node)
        {
            case AndNode and: and.Items.ToList().ForEach(i => Collect(i, fields)); break;
            case OrNode or: or.Items.ToList().ForEach(i => Collect(i, fields)); break;
            case NotNode not: Collect(not.Item, fields); break;
            case TermNode { Field: { } f }: fields.Add(f); break;
            case RangeNode { Field: { } f }: fields.Add(f); break;
        }
    }

    private QueryNode ParseOr(string? field)
    {
        var items = new List<QueryNode> { ParseAnd(field) };
        while (TryKeyword("OR"))
        {
            items.Add(ParseAnd(field));
        }

        return items.Count == 1 ? items[0] : new OrNode(items);
    }

    private QueryNode ParseAnd(string? field)
    {
        var items = new List<QueryNode> { ParseUnary(field) };
        while (true)
        {
            SkipSpace();
            if (_pos >= _text.Length || _text[_pos] == ')' || PeekKeyword("OR"))
            {
                break;
            }

            TryKeyword("AND");   // the default operator is AND
            items.Add(ParseUnary(field));
        }

        return items.Count == 1 ? items[0] : new AndNode(items);
    }

    private QueryNode ParseUnary(string? field)
    {
        SkipSpace();
        if (TryKeyword("NOT"))
        {
            return new NotNode(ParseUnary(field));
        }

        if (_pos < _text.Length && (_text[_pos] == '-' || _text[_pos] == '+'))
        {
            var negate = _text[_pos] == '-';
            _pos++;
            var item = ParsePrimary(field);
            return negate ? new NotNode(item) : item;
        }

        return ParsePrimary(field);
    }

    private QueryNode ParsePrimary(string? field)
    {
        SkipSpace();
        if (_pos >= _text.Length)
        {
            throw Error("The query ends where a term was expected");
        }

        var c = _text[_pos];
        switch (c)
        {
            case '(':
            {
                _pos++;
                var inner = ParseOr(field);
                SkipSpace();
                Expect(')');
                return inner;
            }

            case '"':
                return Phrase(field, ReadPhrase());
            case '[' or '{':
                return ParseRange(field);
            case ')' or ']' or '}' or ':' or '<' or '>' or '=':
                throw Error($"Unexpected '{c}'");
        }

        var start = _pos;
        var word = ReadWord();
        if (field is null && _pos < _text.Length && _text[_pos] == ':')
        {
            var name = CheckField(word.Text, start);
            _pos++;
            return ParseValue(name);
        }

        var after = _pos;
        SkipSpace();
        if (field is null && _pos < _text.Length && (_text[_pos] == '<' || _text[_pos] == '>'))
        {
            return ParseComparison(CheckField(word.Text, start));
        }

        _pos = after;
        return Term(field, word);
    }

    private QueryNode ParseValue(string field)
    {
        if (_pos >= _text.Length || char.IsWhiteSpace(_text[_pos]))
        {
            throw Error($"Field {field} has no value");
        }

        return _text[_pos] switch
        {
            '(' => ParseGroup(field),
            '"' => Phrase(field, ReadPhrase()),
            '[' or '{' => ParseRange(field),
            '<' or '>' => ParseComparison(field),
            _ => Term(field, ReadWord(allowLeadingMinus: true)),
        };
    }

    private QueryNode ParseGroup(string field)
    {
        _pos++;
        var inner = ParseOr(field);
        SkipSpace();
        Expect(')');
        return inner;
    }

    private RangeNode ParseComparison(string field)
    {
        var op = _text[_pos++];
        var inclusive = _pos < _text.Length && _text[_pos] == '=';
        if (inclusive)
        {
            _pos++;
        }

        SkipSpace();
        var bound = Bound(ReadBoundText(), inclusive);
        CountTerm();
        return op == '<' ? new RangeNode(field, null, bound) : new RangeNode(field, bound, null);
    }

    private RangeNode ParseRange(string? field)
    {
        if (field is null)
        {
            throw Error("A range needs a field (field:[a TO b])");
        }

        var lowInclusive = _text[_pos++] == '[';
        SkipSpace();
        var low = ReadBoundText();
        SkipSpace();
        if (!TryKeyword("TO"))
        {
            throw Error("Expected TO in the range");
        }

        SkipSpace();
        var high = ReadBoundText();
        SkipSpace();
        if (_pos >= _text.Length || (_text[_pos] != ']' && _text[_pos] != '}'))
        {
            throw Error("Expected ']' or '}' to close the range");
        }

        var highInclusive = _text[_pos++] == ']';
        CountTerm();
        var lo = low == "*" ? null : Bound(low, lowInclusive);
        var hi = high == "*" ? null : Bound(high, highInclusive);
        if (lo is not null && hi is not null && (lo.Number is null) != (hi.Number is null))
        {
            // One numeric bound and one text bound: compare both as text.
            lo = lo with { Number = null };
            hi = hi with { Number = null };
        }

        return new RangeNode(field, lo, hi);
    }

    private static RangeBound Bound(string text, bool inclusive) =>
        new(text.ToLowerInvariant(), FleetValue.TryNumber(text, out var n) ? n : null, inclusive);

    private string ReadBoundText()
    {
        if (_pos < _text.Length && _text[_pos] == '"')
        {
            return ReadPhrase();
        }

        var word = ReadWord(allowLeadingMinus: true);
        if (word.Text.Length == 0)
        {
            throw Error("Expected a value");
        }

        if (word.Stars + word.QuestionMarks > 0 && word.Text != "*")
        {
            throw Error("Wildcards are not allowed in a range");
        }

        return word.Text;
    }

    private QueryNode Term(string? field, Word word)
    {
        CountTerm();
        if (word.Stars == 0 && word.QuestionMarks == 0)
        {
            return new TermNode(field, TermKind.Exact, word.Text.ToLowerInvariant());
        }

        if (word.Text == "*")
        {
            return field is null ? new AllNode() : new TermNode(field, TermKind.Exists, "*");
        }

        if (word.LeadingWildcard)
        {
            throw ErrorAt(word.Start, "A term cannot start with a wildcard");
        }

        if (word.Stars > _limits.MaxStarsPerTerm || word.QuestionMarks > _limits.MaxQuestionMarksPerTerm)
        {
            throw ErrorAt(word.Start, $"A term can have at most {_limits.MaxStarsPerTerm} '*' and {_limits.MaxQuestionMarksPerTerm} '?' wildcards");
        }

        return new TermNode(field, TermKind.Wildcard, word.Like.ToLowerInvariant());
    }

    private TermNode Phrase(string? field, string text)
    {
        CountTerm();
        return new TermNode(field, TermKind.Exact, text.ToLowerInvariant());
    }

    private void CountTerm()
    {
        if (++_terms > _limits.MaxTerms)
        {
            throw Invalid($"The query has more than {_limits.MaxTerms} terms.");
        }
    }

    private static string CheckField(string name, int at)
    {
        if (name.Length == 0 || name.Contains('*') || name.Contains('?'))
        {
            throw ErrorAt(at, $"'{name}' is not a field name");
        }

        return name;
    }

    /// <summary>A bare word: up to a space or a character with meaning; backslash escapes the next character.</summary>
    private Word ReadWord(bool allowLeadingMinus = false)
    {
        var text = new StringBuilder();
        var like = new StringBuilder();
        int stars = 0, marks = 0;
        var leading = false;
        var start = _pos;
        while (_pos < _text.Length)
        {
            var c = _text[_pos];
            if (c == '\\')
            {
                if (_pos + 1 >= _text.Length)
                {
                    throw Error("A backslash at the end of the query escapes nothing");
                }

                var escaped = _text[_pos + 1];
                text.Append(escaped);
                AppendLiteral(like, escaped);
                _pos += 2;
                continue;
            }

            if (char.IsWhiteSpace(c) || c is '(' or ')' or '[' or ']' or '{' or '}' or '"' or ':' or '<' or '>' or '=')
            {
                break;
            }

            if (c == '-' && _pos == start && !allowLeadingMinus)
            {
                break;
            }

            if (c is '*' or '?')
            {
                leading |= _pos == start;
                if (c == '*')
                {
                    stars++;
                    like.Append('%');
                }
                else
                {
                    marks++;
                    like.Append('_');
                }

                text.Append(c);
                _pos++;
                continue;
            }

            text.Append(c);
            AppendLiteral(like, c);
            _pos++;
        }

        if (_pos == start)
        {
            throw Error(_pos < _text.Length ? $"Unexpected '{_text[_pos]}'" : "The query ends where a term was expected");
        }

        return new Word(text.ToString(), like.ToString(), stars, marks, leading, start);
    }

    private static void AppendLiteral(StringBuilder like, char c)
    {
        if (c is '%' or '_' or '\\')
        {
            like.Append('\\');
        }

        like.Append(c);
    }

    private string ReadPhrase()
    {
        var start = _pos;
        _pos++;
        var text = new StringBuilder();
        while (_pos < _text.Length && _text[_pos] != '"')
        {
            if (_text[_pos] == '\\' && _pos + 1 < _text.Length)
            {
                _pos++;
            }

            text.Append(_text[_pos++]);
        }

        if (_pos >= _text.Length)
        {
            throw ErrorAt(start, "Unterminated phrase");
        }

        _pos++;
        return text.ToString();
    }

    private bool PeekKeyword(string keyword)
    {
        SkipSpace();
        var end = _pos + keyword.Length;
        return end <= _text.Length
            && string.CompareOrdinal(_text, _pos, keyword, 0, keyword.Length) == 0
            && (end == _text.Length || char.IsWhiteSpace(_text[end]) || _text[end] is '(' or '"' or '-' or '[' or '{');
    }

    private bool TryKeyword(string keyword)
    {
        if (!PeekKeyword(keyword))
        {
            return false;
        }

        _pos += keyword.Length;
        return true;
    }

    private void Expect(char c)
    {
        if (_pos >= _text.Length || _text[_pos] != c)
        {
            throw Error(_pos >= _text.Length ? $"Expected '{c}' before the end of the query" : $"Expected '{c}'");
        }

        _pos++;
    }

    private void SkipSpace()
    {
        while (_pos < _text.Length && char.IsWhiteSpace(_text[_pos]))
        {
            _pos++;
        }
    }

    private ApiException Error(string message) => ErrorAt(_pos, message);

    private static ApiException ErrorAt(int at, string message) => Invalid($"{message} at position {at + 1}.");

    internal static ApiException Invalid(string message) => new(400, "InvalidQueryException", message);

    private readonly record struct Word(string Text, string Like, int Stars, int QuestionMarks, bool LeadingWildcard, int Start);
}

/// <summary>How values compare across both stores: numbers as doubles, numeric text as numbers, text in lower case.</summary>
public static class FleetValue
{
    public static bool TryNumber(string text, out double value) =>
        double.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint | NumberStyles.AllowExponent, CultureInfo.InvariantCulture, out value)
        && double.IsFinite(value);

    /// <summary>Numeric text as a range compares it (the SQL store uses the same pattern): <c>-?digits(.digits)?</c>.</summary>
    public static bool TryNumericText(string text, out double value)
    {
        value = 0;
        var i = 0;
        if (i < text.Length && text[i] == '-')
        {
            i++;
        }

        var digits = i;
        while (i < text.Length && char.IsAsciiDigit(text[i]))
        {
            i++;
        }

        if (i == digits)
        {
            return false;
        }

        if (i < text.Length && text[i] == '.')
        {
            var fraction = ++i;
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                i++;
            }

            if (i == fraction)
            {
                return false;
            }
        }

        return i == text.Length && double.TryParse(text, NumberStyles.AllowLeadingSign | NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>The SQL regular expression equal to <see cref="TryNumericText"/>.</summary>
    public const string NumericTextPattern = "^-?[0-9]+(\\.[0-9]+)?$";
}
