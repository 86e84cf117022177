using System.Text;
using System.Text.Json.Nodes;

namespace OrleansIot.Grains.Rules.Sql;

/// <summary>The row an expression reads its fields from: the payload, or an element of an array in a nested SELECT.</summary>
internal readonly record struct SqlScope(SqlContext Context, SqlValue Row);

/// <summary>A compiled expression: a closure built once at parse time, run per message.</summary>
internal sealed record SqlExpr(Func<SqlScope, SqlValue> Eval, string? Name = null, bool IsStar = false);

internal enum TokenKind
{
    Identifier,
    Number,
    String,
    Symbol,
    End,
}

internal readonly record struct Token(TokenKind Kind, string Text, int Position)
{
    public bool Is(string keyword) => Kind == TokenKind.Identifier && string.Equals(Text, keyword, StringComparison.OrdinalIgnoreCase);

    public bool IsSymbol(string symbol) => Kind == TokenKind.Symbol && Text == symbol;

    public override string ToString() => Kind switch
    {
        TokenKind.End => "the end of the statement",
        TokenKind.String => $"'{Text}'",
        _ => $"'{Text}'",
    };
}

internal static class SqlLexer
{
    private static readonly string[] TwoCharSymbols = ["<>", "!=", "<=", ">="];

    public static List<Token> Tokenize(string sql)
    {
        var tokens = new List<Token>();
        var i = 0;
        while (i < sql.Length)
        {
            var c = sql[i];
            if (char.IsWhiteSpace(c))
            {
                i++;
                continue;
            }

            var start = i;
            if (char.IsAsciiLetter(c) || c == '_')
            {
                while (i < sql.Length && (char.IsAsciiLetterOrDigit(sql[i]) || sql[i] == '_'))
                {
                    i++;
                }

                tokens.Add(new Token(TokenKind.Identifier, sql[start..i], start));
            }
            else if (char.IsAsciiDigit(c))
            {
                while (i < sql.Length && char.IsAsciiDigit(sql[i]))
                {
                    i++;
                }

                if (i + 1 < sql.Length && sql[i] == '.' && char.IsAsciiDigit(sql[i + 1]))
                {
                    i++;
                    while (i < sql.Length && char.IsAsciiDigit(sql[i]))
                    {
                        i++;
                    }
                }

                if (i < sql.Length && sql[i] is 'e' or 'E')
                {
                    var e = i + 1;
                    if (e < sql.Length && sql[e] is '-' or '+')
                    {
                        e++;
                    }

                    if (e < sql.Length && char.IsAsciiDigit(sql[e]))
                    {
                        i = e;
                        while (i < sql.Length && char.IsAsciiDigit(sql[i]))
                        {
                            i++;
                        }
                    }
                }

                tokens.Add(new Token(TokenKind.Number, sql[start..i], start));
            }
            else if (c is '\'' or '"')
            {
                // A quote inside is doubled ('it''s'); a backslash escapes the next character.
                var text = new StringBuilder();
                i++;
                while (true)
                {
                    if (i >= sql.Length)
                    {
                        throw new SqlSyntaxException(start, "a string literal is not closed");
                    }

                    if (sql[i] == c)
                    {
                        if (i + 1 < sql.Length && sql[i + 1] == c)
                        {
                            text.Append(c);
                            i += 2;
                            continue;
                        }

                        i++;
                        break;
                    }

                    if (sql[i] == '\\' && i + 1 < sql.Length)
                    {
                        text.Append(sql[i + 1]);
                        i += 2;
                        continue;
                    }

                    text.Append(sql[i++]);
                }

                tokens.Add(new Token(TokenKind.String, text.ToString(), start));
            }
            else if (i + 1 < sql.Length && TwoCharSymbols.Contains(sql.Substring(i, 2)))
            {
                tokens.Add(new Token(TokenKind.Symbol, sql.Substring(i, 2), start));
                i += 2;
            }
            else if ("=<>+-*/%.,()[]{}:".Contains(c, StringComparison.Ordinal))
            {
                tokens.Add(new Token(TokenKind.Symbol, c.ToString(), start));
                i++;
            }
            else
            {
                throw new SqlSyntaxException(start, $"unexpected character '{c}'");
            }
        }

        tokens.Add(new Token(TokenKind.End, "", sql.Length));
        return tokens;
    }
}

/// <summary>
/// Recursive descent over AWS IoT SQL (version 2016-03-23), compiling as it goes: every node becomes a closure, so a
/// rule's SQL is parsed once and each message only runs closures.
/// </summary>
internal sealed class SqlParser(List<Token> tokens)
{
    // VALUE is not reserved: it is a keyword only right after SELECT (see ValueIsKeyword); "value" is a common field.
    private static readonly string[] Reserved = ["SELECT", "FROM", "WHERE", "AS", "AND", "OR", "NOT", "CASE", "WHEN", "THEN", "ELSE", "END"];

    private int _at;

    private Token Current => tokens[_at];

    public Token Next() => tokens[_at++];

    public bool AtEnd => Current.Kind == TokenKind.End;

    public bool Accept(string keywordOrSymbol)
    {
        if (Current.Is(keywordOrSymbol) || Current.IsSymbol(keywordOrSymbol))
        {
            _at++;
            return true;
        }

        return false;
    }

    public void Expect(string keywordOrSymbol)
    {
        if (!Accept(keywordOrSymbol))
        {
            throw Expected($"'{keywordOrSymbol}'");
        }
    }

    public SqlSyntaxException Expected(string what) => new(Current.Position, $"expected {what}, found {Current}");

    public bool Peek(string keywordOrSymbol) => Current.Is(keywordOrSymbol) || Current.IsSymbol(keywordOrSymbol);

    /// <summary>
    /// Whether the VALUE at hand (right after SELECT) is the keyword of <c>SELECT VALUE expr</c> or a field named
    /// "value" (<c>SELECT value * 2 AS v</c>): a keyword is followed by an expression, a field by an operator, a comma,
    /// AS or FROM. <c>SELECT VALUE * FROM</c> is the keyword with the whole payload.
    /// </summary>
    public bool ValueIsKeyword()
    {
        if (!Current.Is("VALUE"))
        {
            return false;
        }

        var next = tokens[_at + 1];
        if (next.IsSymbol("*"))
        {
            var after = tokens[Math.Min(_at + 2, tokens.Count - 1)];
            return after.Kind == TokenKind.End || after.Is("FROM") || after.Is("WHERE") || after.IsSymbol(")");
        }

        if (next.Kind == TokenKind.End || next.Is("FROM") || next.Is("AS") || next.Is("WHERE") || next.Is("AND") || next.Is("OR"))
        {
            return false;
        }

        return next.Kind != TokenKind.Symbol || next.Text is "(" or "{" or "[" or "-";
    }

    public string ExpectString(string what)
    {
        if (Current.Kind != TokenKind.String)
        {
            throw Expected(what);
        }

        return Next().Text;
    }

    public string ExpectIdentifier(string what)
    {
        if (Current.Kind != TokenKind.Identifier || Reserved.Contains(Current.Text, StringComparer.OrdinalIgnoreCase))
        {
            throw Expected(what);
        }

        return Next().Text;
    }

    public SqlExpr Expression() => Or();

    private SqlExpr Or()
    {
        var left = And();
        while (Accept("OR"))
        {
            var (l, r) = (left, And());
            left = new SqlExpr(s =>
            {
                var a = l.Eval(s).AsBool();
                var b = r.Eval(s).AsBool();
                if (a.IsUndefined || b.IsUndefined)
                {
                    return SqlValue.Undefined;
                }

                return SqlValue.Of(a.Bool || b.Bool);
            });
        }

        return left;
    }

    private SqlExpr And()
    {
        var left = Not();
        while (Accept("AND"))
        {
            var (l, r) = (left, Not());
            left = new SqlExpr(s =>
            {
                var a = l.Eval(s).AsBool();
                var b = r.Eval(s).AsBool();
                if (a.IsUndefined || b.IsUndefined)
                {
                    return SqlValue.Undefined;
                }

                return SqlValue.Of(a.Bool && b.Bool);
            });
        }

        return left;
    }

    private SqlExpr Not()
    {
        if (Accept("NOT"))
        {
            var operand = Not();
            return new SqlExpr(s => operand.Eval(s).AsBool() is { IsUndefined: false } b ? SqlValue.Of(!b.Bool) : SqlValue.Undefined);
        }

        return Comparison();
    }

    private SqlExpr Comparison()
    {
        var left = Additive();
        foreach (var op in new[] { "=", "<>", "!=", "<=", ">=", "<", ">" })
        {
            if (Accept(op))
            {
                var (l, r) = (left, Additive());
                return op switch
                {
                    "=" => new SqlExpr(s => SqlValue.Equal(l.Eval(s), r.Eval(s))),
                    "<>" or "!=" => new SqlExpr(s => NotEqual(l.Eval(s), r.Eval(s))),
                    _ => new SqlExpr(s => Compare(op, l.Eval(s), r.Eval(s))),
                };
            }
        }

        return left;
    }

    private static SqlValue NotEqual(SqlValue a, SqlValue b) =>
        a.IsUndefined || b.IsUndefined ? SqlValue.Undefined : SqlValue.Of(!SqlValue.Same(a, b));

    private static SqlValue Compare(string op, SqlValue a, SqlValue b)
    {
        var x = a.AsNumber();
        var y = b.AsNumber();
        if (!x.IsNumber || !y.IsNumber)
        {
            return SqlValue.Undefined;
        }

        var c = x.ToDecimal().CompareTo(y.ToDecimal());
        return SqlValue.Of(op switch
        {
            "<" => c < 0,
            "<=" => c <= 0,
            ">" => c > 0,
            _ => c >= 0,
        });
    }

    private SqlExpr Additive()
    {
        var left = Multiplicative();
        while (true)
        {
            if (Accept("+"))
            {
                var (l, r) = (left, Multiplicative());
                left = new SqlExpr(s => SqlArithmetic.Add(l.Eval(s), r.Eval(s)));
            }
            else if (Accept("-"))
            {
                var (l, r) = (left, Multiplicative());
                left = new SqlExpr(s => SqlArithmetic.Apply('-', l.Eval(s), r.Eval(s)));
            }
            else
            {
                return left;
            }
        }
    }

    private SqlExpr Multiplicative()
    {
        var left = Unary();
        while (true)
        {
            var op = Current.IsSymbol("*") ? '*' : Current.IsSymbol("/") ? '/' : Current.IsSymbol("%") ? '%' : '\0';
            if (op == '\0')
            {
                return left;
            }

            Next();
            var (l, r) = (left, Unary());
            left = new SqlExpr(s => SqlArithmetic.Apply(op, l.Eval(s), r.Eval(s)));
        }
    }

    private SqlExpr Unary()
    {
        if (Accept("-"))
        {
            var operand = Unary();
            return new SqlExpr(s => SqlArithmetic.Apply('-', SqlValue.Of(0L), operand.Eval(s)));
        }

        return Postfix();
    }

    private SqlExpr Postfix()
    {
        var expr = Primary();
        while (Peek("."))
        {
            Next();
            var field = FieldName();
            var inner = expr;
            expr = new SqlExpr(s => Field(inner.Eval(s), field), field);
        }

        return expr;
    }

    /// <summary>A field after '.': any identifier (keywords too) or a quoted name.</summary>
    private string FieldName()
    {
        if (Current.Kind is TokenKind.Identifier or TokenKind.String)
        {
            return Next().Text;
        }

        throw Expected("a field name after '.'");
    }

    internal static SqlValue Field(SqlValue container, string field) =>
        container.Kind == SqlKind.Object && container.Object.TryGetPropertyValue(field, out var node)
            ? SqlValue.FromJson(node)
            : SqlValue.Undefined;

    private SqlExpr Primary()
    {
        var token = Current;
        switch (token.Kind)
        {
            case TokenKind.Number:
                Next();
                var number = SqlValue.TryParseNumber(token.Text, out var n) ? n : throw new SqlSyntaxException(token.Position, $"'{token.Text}' is not a number");
                return new SqlExpr(_ => number);
            case TokenKind.String:
                Next();
                var text = SqlValue.Of(token.Text);
                return new SqlExpr(_ => text);
            case TokenKind.End:
                throw Expected("an expression");
        }

        if (token.IsSymbol("*"))
        {
            Next();
            return new SqlExpr(s => s.Row, "*", IsStar: true);
        }

        if (Accept("("))
        {
            if (Peek("SELECT"))
            {
                var nested = SqlStatementParser.Nested(this);
                Expect(")");
                return nested;
            }

            var inner = Expression();
            Expect(")");
            return inner;
        }

        if (Accept("{"))
        {
            return ObjectLiteral();
        }

        if (Accept("["))
        {
            return ArrayLiteral();
        }

        if (token.Kind != TokenKind.Identifier)
        {
            throw Expected("an expression");
        }

        if (token.Is("TRUE") || token.Is("FALSE") || token.Is("NULL"))
        {
            Next();
            var literal = token.Is("NULL") ? SqlValue.Null : SqlValue.Of(token.Is("TRUE"));
            return new SqlExpr(_ => literal);
        }

        if (token.Is("CASE"))
        {
            Next();
            return Case();
        }

        var name = ExpectIdentifier("an expression");
        if (Accept("("))
        {
            return SqlFunctions.Call(this, name, token.Position);
        }

        return new SqlExpr(s => Field(s.Row, name), name);
    }

    private SqlExpr ObjectLiteral()
    {
        var fields = new List<(string Key, SqlExpr Value)>();
        if (!Accept("}"))
        {
            do
            {
                var key = Current.Kind is TokenKind.String or TokenKind.Identifier ? Next().Text : throw Expected("a key in an object literal");
                Expect(":");
                fields.Add((key, Expression()));
            }
            while (Accept(","));
            Expect("}");
        }

        return new SqlExpr(s =>
        {
            var o = new JsonObject();
            foreach (var (key, value) in fields)
            {
                var v = value.Eval(s);
                if (!v.IsUndefined)
                {
                    o[key] = v.ToJson();
                }
            }

            return SqlValue.Of(o);
        });
    }

    private SqlExpr ArrayLiteral()
    {
        var items = new List<SqlExpr>();
        if (!Accept("]"))
        {
            do
            {
                items.Add(Expression());
            }
            while (Accept(","));
            Expect("]");
        }

        return new SqlExpr(s =>
        {
            var a = new JsonArray();
            foreach (var item in items)
            {
                var v = item.Eval(s);
                if (!v.IsUndefined)
                {
                    a.Add(v.ToJson());
                }
            }

            return SqlValue.Of(a);
        });
    }

    /// <summary><c>CASE v WHEN a THEN x … [ELSE y] END</c>, or the searched form <c>CASE WHEN cond THEN x … END</c>.</summary>
    private SqlExpr Case()
    {
        SqlExpr? subject = Peek("WHEN") ? null : Expression();
        var branches = new List<(SqlExpr When, SqlExpr Then)>();
        while (Accept("WHEN"))
        {
            var when = Expression();
            Expect("THEN");
            branches.Add((when, Expression()));
        }

        if (branches.Count == 0)
        {
            throw Expected("WHEN");
        }

        var otherwise = Accept("ELSE") ? Expression() : null;
        Expect("END");
        return new SqlExpr(s =>
        {
            if (subject is not null)
            {
                var v = subject.Eval(s);
                if (v.IsUndefined)
                {
                    return SqlValue.Undefined;
                }

                foreach (var (when, then) in branches)
                {
                    if (SqlValue.Equal(v, when.Eval(s)) is { Kind: SqlKind.Bool, Bool: true })
                    {
                        return then.Eval(s);
                    }
                }
            }
            else
            {
                foreach (var (when, then) in branches)
                {
                    if (when.Eval(s).AsBool() is { Kind: SqlKind.Bool, Bool: true })
                    {
                        return then.Eval(s);
                    }
                }
            }

            return otherwise?.Eval(s) ?? SqlValue.Undefined;
        });
    }
}
