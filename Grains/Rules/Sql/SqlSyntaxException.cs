namespace OrleansIot.Grains.Rules.Sql;

/// <summary>A rule's SQL does not parse: the message names the position (0-based character offset) and what was expected.</summary>
internal sealed class SqlSyntaxException : Exception
{
    public SqlSyntaxException()
    {
    }

    public SqlSyntaxException(string message)
        : base(message)
    {
    }

    public SqlSyntaxException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public SqlSyntaxException(int position, string message)
        : base($"SQL syntax error at position {position}: {message}")
    {
        Position = position;
    }

    public int Position { get; }
}
