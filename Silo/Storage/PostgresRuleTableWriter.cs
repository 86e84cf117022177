using System.Collections.Concurrent;
using System.Text;
using Microsoft.Extensions.Configuration;
using Npgsql;
using NpgsqlTypes;
using OrleansIot.Grains.Rules;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// The <c>postgres</c> rule action's writer: one data source per named connection string, each table's column types
/// read from the catalog (so text values are cast to them by the database), and one multi-row insert per call
/// (<c>unnest</c> of text arrays) that skips rows conflicting with a unique key. Identifiers are validated by the
/// action, folded to lower case as unquoted SQL names are, and quoted; values are only ever parameters.
/// </summary>
internal sealed class PostgresRuleTableWriter(IConfiguration configuration) : IRuleTableWriter, IAsyncDisposable
{
    private readonly ConcurrentDictionary<string, NpgsqlDataSource> _sources = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string, string), Dictionary<string, string>> _columnTypes = new();

    public async Task InsertAsync(string connection, string table, IReadOnlyList<string> columns, IReadOnlyList<string?[]> rows)
    {
        var source = _sources.GetOrAdd(connection, name => NpgsqlDataSource.Create(configuration.GetConnectionString(name)
            ?? throw new InvalidOperationException($"postgres: no connection string '{name}' is configured (ConnectionStrings:{name}).")));
        var types = _columnTypes.TryGetValue((connection, table), out var known) ? known : await ColumnTypesAsync(source, connection, table);
        var sql = new StringBuilder("INSERT INTO ").Append(Quote(table)).Append(" (");
        var select = new StringBuilder(" SELECT ");
        var from = new StringBuilder(" FROM unnest(");
        for (var i = 0; i < columns.Count; i++)
        {
            if (!types.TryGetValue(columns[i].ToLowerInvariant(), out var type))
            {
                _columnTypes.TryRemove((connection, table), out _);   // the table may have changed: read it again next time
                throw new InvalidOperationException($"postgres: table {table} has no column '{columns[i]}'.");
            }

            var separator = i == 0 ? "" : ", ";
            sql.Append(separator).Append(Quote(columns[i]));
            select.Append(separator).Append('c').Append(i).Append("::").Append(type);
            from.Append(separator).Append("@c").Append(i);
        }

        sql.Append(')').Append(select).Append(from).Append(") AS u(")
            .AppendJoin(", ", Enumerable.Range(0, columns.Count).Select(i => "c" + i))
            .Append(") ON CONFLICT DO NOTHING");
        await using var command = source.CreateCommand(sql.ToString());
        for (var i = 0; i < columns.Count; i++)
        {
            var column = i;
            command.Parameters.Add(new NpgsqlParameter("c" + i, NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = rows.Select(r => r[column]).ToArray() });
        }

        try
        {
            await command.ExecuteNonQueryAsync();
        }
        catch (PostgresException)
        {
            _columnTypes.TryRemove((connection, table), out _);
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var source in _sources.Values)
        {
            await source.DisposeAsync();
        }
    }

    private async Task<Dictionary<string, string>> ColumnTypesAsync(NpgsqlDataSource source, string connection, string table)
    {
        await using var command = source.CreateCommand("""
            SELECT a.attname, format_type(a.atttypid, a.atttypmod)
              FROM pg_attribute a
             WHERE a.attrelid = to_regclass(@table) AND a.attnum > 0 AND NOT a.attisdropped
            """);
        command.Parameters.AddWithValue("table", Quote(table));
        var types = new Dictionary<string, string>(StringComparer.Ordinal);
        await using (var reader = await command.ExecuteReaderAsync())
        {
            while (await reader.ReadAsync())
            {
                types[reader.GetString(0)] = reader.GetString(1);
            }
        }

        if (types.Count == 0)
        {
            throw new InvalidOperationException($"postgres: table {table} does not exist in database '{connection}'.");
        }

        _columnTypes[(connection, table)] = types;
        return types;
    }

    // Validated identifiers only reach here. They mean what they would unquoted in SQL (folded to lower case), and
    // are quoted anyway, so the statement is safe regardless.
    private static string Quote(string name) =>
        string.Join('.', name.ToLowerInvariant().Split('.').Select(p => "\"" + p.Replace("\"", "\"\"", StringComparison.Ordinal) + "\""));
}
