using System.Text;
using System.Text.Json;
using OrleansIot.Grains.Abstractions.FleetIndex;

namespace OrleansIot.Grains.FleetIndex;

public enum SqlArgType
{
    Text,
    Jsonb,
    Real,
    Whole,
}

/// <summary>A parameter of a translated query.</summary>
public sealed record SqlArg(string Name, object Value, SqlArgType Type);

/// <summary>
/// Translates a query tree into a parameterised SQL condition over the fleet index's field columns (<see cref="IndexFieldNames.Column"/>): every
/// value and field name is a parameter, never text spliced into the statement. Containment (<c>@&gt;</c>) and key
/// existence (<c>?</c>) use the GIN indexes; wildcards and ranges test the field's elements. The semantics are
/// <see cref="MemoryFleetIndex.Matches"/>'s, and one test contract runs the same cases against both.
/// </summary>
public sealed class FleetQuerySql
{
    /// <summary>An element as a range compares it: a number, or numeric text, else NULL (the memory store's <see cref="FieldValue.TryNumeric"/>).</summary>
    public static string RangeNumberOf(string element) =>
        $"(CASE jsonb_typeof({element}) WHEN 'number' THEN ({element})::float8 WHEN 'string' THEN CASE WHEN ({element} #>> '{{}}') ~ '{FleetValue.NumericTextPattern}' THEN ({element} #>> '{{}}')::float8 END END)";

    /// <summary>An element as an aggregation counts it: as a range does, and booleans as 1 or 0 (<see cref="FleetAggregates.Numeric"/>).</summary>
    public static string NumberOf(string element) =>
        $"(CASE jsonb_typeof({element}) WHEN 'number' THEN ({element})::float8 WHEN 'boolean' THEN CASE WHEN ({element})::boolean THEN 1.0::float8 ELSE 0.0::float8 END WHEN 'string' THEN CASE WHEN ({element} #>> '{{}}') ~ '{FleetValue.NumericTextPattern}' THEN ({element} #>> '{{}}')::float8 END END)";

    private readonly List<SqlArg> _args = [];
    private readonly bool[] _parts = new bool[3];
    private readonly StringBuilder _sql = new();

    private FleetQuerySql()
    {
    }

    public string Condition => _sql.ToString();

    public IReadOnlyList<SqlArg> Args => _args;

    /// <summary>Whether the condition reads this part's fields (a statement joins only the parts it reads).</summary>
    public bool Uses(IndexPart part) => _parts[(int)part];

    public static FleetQuerySql Translate(QueryNode root)
    {
        var translation = new FleetQuerySql();
        translation.Append(root);
        return translation;
    }

    /// <summary>Adds a parameter and returns its placeholder (for statements that add their own, e.g. the aggregation field).</summary>
    public string Arg(object value, SqlArgType type)
    {
        var name = "q" + _args.Count.ToString(System.Globalization.CultureInfo.InvariantCulture);
        _args.Add(new SqlArg(name, value, type));
        return type == SqlArgType.Jsonb ? $"@{name}::jsonb" : "@" + name;
    }

    private void Append(QueryNode node)
    {
        switch (node)
        {
            case AllNode:
                _sql.Append("TRUE");
                break;
            case AndNode and:
                Join(and.Items, " AND ");
                break;
            case OrNode or:
                Join(or.Items, " OR ");
                break;
            case NotNode not:
                _sql.Append("NOT (");
                Append(not.Item);
                _sql.Append(')');
                break;
            case TermNode term:
                Candidates(term.Field, (column, field) => Term(term, column, field));
                break;
            case RangeNode range:
                Candidates(range.Field, (column, field) => Range(range, column, field));
                break;
        }
    }

    private void Join(IReadOnlyList<QueryNode> items, string op)
    {
        _sql.Append('(');
        for (var i = 0; i < items.Count; i++)
        {
            if (i > 0)
            {
                _sql.Append(op);
            }

            Append(items[i]);
        }

        _sql.Append(')');
    }

    /// <summary>A field is in one column; an unqualified term looks at the registry's and the shadow's values.</summary>
    private void Candidates(string? field, Action<string, string> leaf)
    {
        if (field is not null)
        {
            var part = IndexFieldNames.PartOf(field) ?? IndexPart.Registry;
            _parts[(int)part] = true;
            leaf(IndexFieldNames.Column(part), field);
            return;
        }

        _parts[(int)IndexPart.Registry] = _parts[(int)IndexPart.Shadow] = true;
        _sql.Append('(');
        leaf(IndexFieldNames.Column(IndexPart.Registry), IndexFields.AllValues);
        _sql.Append(" OR ");
        leaf(IndexFieldNames.Column(IndexPart.Shadow), IndexFields.AllValues);
        _sql.Append(')');
    }

    private void Term(TermNode term, string column, string field)
    {
        if (field == "thingName" && term.Kind == TermKind.Wildcard)
        {
            // Name prefixes are the most common wildcard: the row's own name (thing names are ASCII, so lower() is
            // the index's lower case) with its pattern index, not a scan of every entry's fields.
            _sql.Append($"(lower(r.thing_name) LIKE {Arg(term.Text, SqlArgType.Text)})");
            return;
        }

        switch (term.Kind)
        {
            case TermKind.Exists:
                _sql.Append($"({column} ? {Arg(field, SqlArgType.Text)})");
                return;
            case TermKind.Wildcard:
                _sql.Append($"EXISTS (SELECT 1 FROM jsonb_array_elements_text({column} -> {Arg(field, SqlArgType.Text)}) AS qt(v) WHERE qt.v LIKE {Arg(term.Text, SqlArgType.Text)})");
                return;
        }

        _sql.Append('(');
        _sql.Append($"{column} @> {Arg(Contains(field, w => w.WriteStringValue(term.Text)), SqlArgType.Jsonb)}");
        if (term.Number is { } number)
        {
            _sql.Append($" OR {column} @> {Arg(Contains(field, w => w.WriteNumberValue(number)), SqlArgType.Jsonb)}");
        }

        if (term.Text is "true" or "false")
        {
            _sql.Append($" OR {column} @> {Arg(Contains(field, w => w.WriteBooleanValue(term.Text == "true")), SqlArgType.Jsonb)}");
        }

        _sql.Append(')');
    }

    private void Range(RangeNode range, string column, string field)
    {
        // Qualified names only: a bare name inside the subquery could resolve to a column of the statement around it.
        _sql.Append($"EXISTS (SELECT 1 FROM jsonb_array_elements({column} -> {Arg(field, SqlArgType.Text)}) AS qe(v) WHERE ");
        if (range.Numeric)
        {
            var n = RangeNumberOf("qe.v");
            _sql.Append($"{n} IS NOT NULL");
            if (range.Low is { } lo)
            {
                _sql.Append($" AND {n} {(lo.Inclusive ? ">=" : ">")} {Arg(lo.Number!.Value, SqlArgType.Real)}");
            }

            if (range.High is { } hi)
            {
                _sql.Append($" AND {n} {(hi.Inclusive ? "<=" : "<")} {Arg(hi.Number!.Value, SqlArgType.Real)}");
            }
        }
        else
        {
            _sql.Append("jsonb_typeof(qe.v) = 'string'");
            if (range.Low is { } lo)
            {
                _sql.Append($" AND (qe.v #>> '{{}}') COLLATE \"C\" {(lo.Inclusive ? ">=" : ">")} {Arg(lo.Text, SqlArgType.Text)}");
            }

            if (range.High is { } hi)
            {
                _sql.Append($" AND (qe.v #>> '{{}}') COLLATE \"C\" {(hi.Inclusive ? "<=" : "<")} {Arg(hi.Text, SqlArgType.Text)}");
            }
        }

        _sql.Append(')');
    }

    /// <summary><c>{"field":[value]}</c>: written by a JSON writer, so the field name and value cannot break out.</summary>
    private static string Contains(string field, Action<Utf8JsonWriter> value)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream))
        {
            writer.WriteStartObject();
            writer.WriteStartArray(field);
            value(writer);
            writer.WriteEndArray();
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(stream.ToArray());
    }
}
