using System.Text;

namespace OrleansIot.Grains.Rules.Sql;

/// <summary>
/// An AWS substitution template: text with <c>${expression}</c> parts, each any SQL expression over the original
/// message (not the SELECT output). Compiled once; an Undefined part renders as nothing.
/// </summary>
internal sealed class SqlTemplate
{
    private readonly List<Func<SqlScope, string>> _parts;
    private readonly SqlExpr? _whole;

    private SqlTemplate(List<Func<SqlScope, string>> parts, SqlExpr? whole)
    {
        _parts = parts;
        _whole = whole;
    }

    public static SqlTemplate Parse(string template)
    {
        var parts = new List<Func<SqlScope, string>>();
        SqlExpr? whole = null;
        var i = 0;
        while (i < template.Length)
        {
            var start = template.IndexOf("${", i, StringComparison.Ordinal);
            if (start < 0)
            {
                var rest = template[i..];
                parts.Add(_ => rest);
                break;
            }

            if (start > i)
            {
                var text = template[i..start];
                parts.Add(_ => text);
            }

            var end = template.IndexOf('}', start + 2);
            if (end < 0)
            {
                throw new SqlSyntaxException(start, "a substitution template's '${' is not closed by '}'");
            }

            var expr = SqlStatement.ParseExpression(template[(start + 2)..end]);
            parts.Add(s => expr.Eval(s).AsText() ?? "");
            whole = start == 0 && end == template.Length - 1 ? expr : null;
            i = end + 1;
        }

        return new SqlTemplate(parts, whole);
    }

    /// <summary>
    /// Like <see cref="Render"/>, but a template that is one whole <c>${expression}</c> gives <c>null</c> when the
    /// expression is Undefined or Null (a column value, where "" is not "nothing").
    /// </summary>
    public string? RenderOrNull(SqlContext context)
    {
        if (_whole is null)
        {
            return Render(context);
        }

        var value = _whole.Eval(new SqlScope(context, context.Whole()));
        return value.IsUndefined || value.Kind == SqlKind.Null ? null : value.AsText() ?? "";
    }

    public string Render(SqlContext context)
    {
        var scope = new SqlScope(context, context.Whole());
        var text = new StringBuilder();
        foreach (var part in _parts)
        {
            text.Append(part(scope));
        }

        return text.ToString();
    }
}
