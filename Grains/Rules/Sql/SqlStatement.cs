using System.Text;
using System.Text.Json.Nodes;

namespace OrleansIot.Grains.Rules.Sql;

/// <summary>
/// A parsed and compiled AWS IoT SQL statement (version 2016-03-23): <c>SELECT … [FROM 'topic/filter'] [WHERE …]</c>.
/// Parse once with <see cref="Parse"/>; <see cref="Evaluate"/> runs the compiled closures per message.
/// </summary>
internal sealed class SqlStatement
{
    private readonly SqlExpr? _where;
    private readonly Func<SqlScope, SqlOutput> _select;

    private SqlStatement(string sql, string? topicFilter, SqlExpr? where, Func<SqlScope, SqlOutput> select)
    {
        Sql = sql;
        TopicFilter = topicFilter;
        _where = where;
        _select = select;
    }

    public string Sql { get; }

    /// <summary>The FROM topic filter; null for a rule used only through Basic Ingest.</summary>
    public string? TopicFilter { get; }

    /// <summary>Parses and compiles; a syntax error is a <see cref="SqlSyntaxException"/> naming the position and what was expected.</summary>
    public static SqlStatement Parse(string sql)
    {
        ArgumentNullException.ThrowIfNull(sql);
        var parser = new SqlParser(SqlLexer.Tokenize(sql));
        parser.Expect("SELECT");
        var select = SqlStatementParser.SelectList(parser);
        string? filter = null;
        if (parser.Accept("FROM"))
        {
            var at = parser.Next();
            if (at.Kind != TokenKind.String)
            {
                throw new SqlSyntaxException(at.Position, $"expected a topic filter in quotes after FROM, found {at}");
            }

            if (!Abstractions.Routing.TopicFilter.IsValidFilter(at.Text))
            {
                throw new SqlSyntaxException(at.Position, $"'{at.Text}' is not a valid topic filter");
            }

            filter = at.Text;
        }

        var where = parser.Accept("WHERE") ? parser.Expression() : null;
        if (!parser.AtEnd)
        {
            throw parser.Expected("the end of the statement");
        }

        return new SqlStatement(sql, filter, where, select);
    }

    /// <summary>One expression (a substitution template's <c>${…}</c>), compiled.</summary>
    internal static SqlExpr ParseExpression(string expression)
    {
        var parser = new SqlParser(SqlLexer.Tokenize(expression));
        var expr = parser.Expression();
        if (!parser.AtEnd)
        {
            throw parser.Expected("the end of the expression");
        }

        return expr;
    }

    /// <summary>Whether the FROM filter matches a topic.</summary>
    public bool Matches(string topic) => TopicFilter is not null && Abstractions.Routing.TopicFilter.Matches(TopicFilter, topic);

    /// <summary>The rule's output for a message, or null when WHERE is not true (false, Undefined or not a Boolean).</summary>
    public SqlOutput? Evaluate(SqlContext context)
    {
        var scope = new SqlScope(context, context.Whole());
        if (_where is not null && _where.Eval(scope).AsBool() is not { Kind: SqlKind.Bool, Bool: true })
        {
            return null;
        }

        return _select(scope);
    }

    /// <summary>
    /// <see cref="Evaluate"/>, reading the shadows <c>get_thing_shadow</c> asks for through <paramref name="readShadow"/>
    /// (each once per message) and evaluating again; evaluation has no side effects, so repeating it is safe.
    /// </summary>
    public async ValueTask<SqlOutput?> EvaluateAsync(SqlContext context, Func<string, string, Task<byte[]?>> readShadow)
    {
        for (var reads = 0; ; reads++)
        {
            try
            {
                return Evaluate(context);
            }
            catch (ShadowNeededException needed) when (reads < 16)
            {
                context.AddShadow(needed.ThingName, needed.ShadowName, await readShadow(needed.ThingName, needed.ShadowName));
            }
        }
    }
}

/// <summary>What a rule's SELECT produced: a JSON value, or (for <c>SELECT *</c> of a payload that is not JSON) the raw bytes.</summary>
internal sealed record SqlOutput(SqlValue Value, byte[]? Raw = null)
{
    /// <summary>True when <see cref="ToBytes"/> is JSON (not the raw bytes of a non-JSON payload, not empty for Undefined).</summary>
    public bool IsJson => Raw is null && !Value.IsUndefined;

    /// <summary>The payload an action sends: JSON text, the raw bytes, or nothing for Undefined (AWS: an empty string).</summary>
    public byte[] ToBytes() => Raw ?? (Value.IsUndefined ? [] : Encoding.UTF8.GetBytes(Value.ToJson()?.ToJsonString(SqlValue.OutputJson) ?? "null"));
}

/// <summary>The SELECT list (top level and nested).</summary>
internal static class SqlStatementParser
{
    public static Func<SqlScope, SqlOutput> SelectList(SqlParser parser)
    {
        if (parser.ValueIsKeyword())
        {
            parser.Next();
            var value = parser.Expression();
            return s => value.IsStar && !s.Context.TryGetJson(out _) ? new SqlOutput(SqlValue.Undefined, s.Context.Payload) : new SqlOutput(value.Eval(s));
        }

        var items = new List<(SqlExpr Expr, string[]? Alias)>();
        var unnamed = 0;
        do
        {
            var expr = parser.Expression();
            string[]? alias = null;
            if (parser.Accept("AS"))
            {
                var path = new List<string> { parser.ExpectIdentifier("a name after AS") };
                while (parser.Accept("."))
                {
                    path.Add(parser.ExpectIdentifier("a name after '.'"));
                }

                alias = [.. path];
            }
            else if (!expr.IsStar)
            {
                alias = [expr.Name ?? $"_{++unnamed}"];
            }

            items.Add((expr, alias));
        }
        while (parser.Accept(","));

        var onlyStar = items.Count == 1 && items[0].Expr.IsStar;
        return s =>
        {
            if (onlyStar && !s.Context.TryGetJson(out _))
            {
                return new SqlOutput(SqlValue.Undefined, s.Context.Payload);   // SELECT * of a binary payload: the bytes as they are
            }

            if (onlyStar && s.Row.Kind != SqlKind.Object)
            {
                return new SqlOutput(s.Row);                                    // SELECT * of a JSON value that is not an object: the value
            }

            return new SqlOutput(SqlValue.Of(Build(items, s)));
        };
    }

    /// <summary>A nested <c>(SELECT … FROM array [WHERE …])</c>: one output per element of the array that passes WHERE.</summary>
    public static SqlExpr Nested(SqlParser parser)
    {
        parser.Expect("SELECT");
        var select = SelectList(parser);
        parser.Expect("FROM");
        var source = parser.Expression();
        var where = parser.Accept("WHERE") ? parser.Expression() : null;
        return new SqlExpr(s =>
        {
            var from = source.Eval(s);
            if (from.Kind != SqlKind.Array)
            {
                return SqlValue.Undefined;
            }

            var result = new JsonArray();
            foreach (var element in from.Array)
            {
                var row = new SqlScope(s.Context, SqlValue.FromJson(element));
                if (where is not null && where.Eval(row).AsBool() is not { Kind: SqlKind.Bool, Bool: true })
                {
                    continue;
                }

                var output = select(row).Value;
                if (!output.IsUndefined)
                {
                    result.Add(output.ToJson());
                }
            }

            return SqlValue.Of(result);
        });
    }

    private static JsonObject Build(List<(SqlExpr Expr, string[]? Alias)> items, SqlScope s)
    {
        var output = new JsonObject();
        foreach (var (expr, alias) in items)
        {
            var value = expr.Eval(s);
            if (alias is null)
            {
                // '*': every field of the row.
                if (value.Kind == SqlKind.Object)
                {
                    foreach (var (name, node) in value.Object)
                    {
                        output[name] = node?.DeepClone();
                    }
                }

                continue;
            }

            if (value.IsUndefined)
            {
                continue;
            }

            var target = output;
            for (var i = 0; i < alias.Length - 1; i++)
            {
                if (target[alias[i]] is not JsonObject next)
                {
                    next = [];
                    target[alias[i]] = next;
                }

                target = next;
            }

            target[alias[^1]] = value.ToJson();
        }

        return output;
    }
}
