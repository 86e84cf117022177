using System.Data.Common;

namespace OrleansIot.Grains.Abstractions;

/// <summary>What kind of database failure an exception is.</summary>
public static class DatabaseErrors
{
    /// <summary>
    /// A failure that trying again can cure, as the database driver classifies it (<see cref="DbException.IsTransient"/>):
    /// the server restarting or failing over (PostgreSQL's 57P01 on every pooled connection's next use), a connection
    /// refused or broken, a serialization failure. An exception wrapping one counts too.
    /// </summary>
    public static bool IsTransient(Exception exception) => exception is DbException { IsTransient: true }
        || (exception.InnerException is { } inner && IsTransient(inner));
}
