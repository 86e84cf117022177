namespace OrleansIot.Grains.Rules;

/// <summary>
/// Inserts rows for the <c>postgres</c> rule action. Identifiers reach it validated (<see cref="RuleActions.IsIdentifier"/>);
/// values are text, converted by the database to each column's type; a row that conflicts with a unique key is
/// skipped (a redelivered message, when the table is keyed by <c>traceid()</c>).
/// </summary>
public interface IRuleTableWriter
{
    /// <summary>Inserts the rows (one value per column, <c>null</c> = SQL NULL) in one statement.</summary>
    /// <param name="connection">The name of a connection string (<c>ConnectionStrings:{name}</c>).</param>
    /// <param name="table">The table, optionally schema-qualified (<c>schema.table</c>).</param>
    /// <param name="columns">The columns, in the order of each row's values.</param>
    /// <param name="rows">The rows.</param>
    Task InsertAsync(string connection, string table, IReadOnlyList<string> columns, IReadOnlyList<string?[]> rows);
}
