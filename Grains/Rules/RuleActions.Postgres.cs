using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Grains.Rules;

internal static partial class RuleActions
{
    /// <summary>A table or column name we accept: a plain PostgreSQL identifier, never quoted text from a rule.</summary>
    public static bool IsIdentifier(string name) => IdentifierPattern().IsMatch(name);

    /// <summary>
    /// <c>{"postgres": {"table": "readings", "connection": "Iot", "columns": {"device": "${topic(2)}"}, "jsonColumn": "doc"}}</c>:
    /// one row per output in a table of a configured database (our DynamoDB). Without <c>columns</c> and
    /// <c>jsonColumn</c> each field of the output object fills the column of its name (DynamoDBv2's putItem);
    /// <c>columns</c> maps columns to substitution templates; <c>jsonColumn</c> takes the whole output as JSON.
    /// Rows of one stream batch go in one statement.
    /// </summary>
    private static CompiledAction Postgres(JsonObject body)
    {
        var table = Text(body, "postgres", "table");
        var parts = table.Split('.');
        if (parts.Length > 2 || !parts.All(IsIdentifier))
        {
            throw ApiException.Invalid($"postgres.table '{table}' must be a plain identifier or schema.identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters).");
        }

        var connection = Text(body, "postgres", "connection", "Iot");
        var jsonColumn = body["jsonColumn"] is null ? null : Text(body, "postgres", "jsonColumn");
        var mapped = new List<(string Column, SqlTemplate Value)>();
        if (body["columns"] is { } columnsNode)
        {
            if (columnsNode is not JsonObject columns || columns.Count == 0)
            {
                throw ApiException.Invalid("postgres.columns must be an object mapping column names to substitution templates.");
            }

            foreach (var (column, _) in columns)
            {
                mapped.Add((column, Template(columns, "postgres.columns", column)));
            }
        }

        foreach (var column in mapped.Select(m => m.Column).Append(jsonColumn).OfType<string>())
        {
            if (!IsIdentifier(column))
            {
                throw ApiException.Invalid($"postgres: column '{column}' must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*, at most 63 characters).");
            }
        }

        if (jsonColumn is not null && mapped.Any(m => m.Column == jsonColumn))
        {
            throw ApiException.Invalid($"postgres: column '{jsonColumn}' is both jsonColumn and in columns.");
        }

        var byOutputFields = jsonColumn is null && mapped.Count == 0;
        return new CompiledAction("PostgresAction", _ => $"{connection}/{table}", (c, onFailure) =>
        {
            var writer = c.Services.Services.GetService<IRuleTableWriter>()
                ?? throw new InvalidOperationException("postgres: this host has no PostgreSQL access for rules.");
            List<string> columns;
            List<string?> values;
            if (byOutputFields)
            {
                (columns, values) = OutputFields(c.Output);
            }
            else
            {
                columns = [.. mapped.Select(m => m.Column)];
                values = [.. mapped.Select(m => m.Value.RenderOrNull(c.Message))];
                if (jsonColumn is not null)
                {
                    if (!c.OutputIsJson)
                    {
                        throw new InvalidOperationException("postgres: the rule's output is not JSON, so it cannot fill a JSON column.");
                    }

                    columns.Add(jsonColumn);
                    values.Add(System.Text.Encoding.UTF8.GetString(c.Output));
                }
            }

            // Outputs with the same columns share a statement.
            var target = (writer, connection, table, string.Join(',', columns));
            c.Batch.Add<string?[]>(target, c.RuleName, "PostgresAction", rows => writer.InsertAsync(connection, table, columns, rows), [.. values], onFailure);
            return Task.CompletedTask;
        }, Deferred: true);
    }

    private static (List<string> Columns, List<string?> Values) OutputFields(byte[] output)
    {
        JsonObject fields;
        try
        {
            fields = JsonNode.Parse(output) as JsonObject ?? throw new InvalidOperationException("postgres: the rule's output is not a JSON object, so it has no fields to map to columns.");
        }
        catch (JsonException)
        {
            throw new InvalidOperationException("postgres: the rule's output is not JSON.");
        }

        var columns = new List<string>(fields.Count);
        var values = new List<string?>(fields.Count);
        foreach (var (name, value) in fields)
        {
            if (!IsIdentifier(name))
            {
                throw new InvalidOperationException($"postgres: output field '{name}' is not a plain column name; rename it with AS.");
            }

            columns.Add(name);
            values.Add(value switch
            {
                null => null,
                JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
                _ => value.ToJsonString(),
            });
        }

        return columns.Count == 0 ? throw new InvalidOperationException("postgres: the rule's output has no fields.") : (columns, values);
    }

    [GeneratedRegex("^[A-Za-z_][A-Za-z0-9_]{0,62}$")]
    private static partial Regex IdentifierPattern();
}
