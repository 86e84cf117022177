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

    /// <summary>
    /// Runs a database write, and while it fails for a passing reason (<see cref="IsTransient"/>) runs it again after
    /// each of <paramref name="pauses"/> in turn; the last failure, or any other, is thrown. Only for writes that may
    /// run twice: idempotent, revision-checked, or at least once by contract.
    /// </summary>
    public static async Task<T> RetryTransientAsync<T>(Func<Task<T>> write, IReadOnlyList<TimeSpan> pauses, TimeProvider time,
        Action<Exception>? retrying = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(write);
        ArgumentNullException.ThrowIfNull(pauses);
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await write();
            }
            catch (Exception ex) when (attempt < pauses.Count && IsTransient(ex) && !cancellationToken.IsCancellationRequested)
            {
                retrying?.Invoke(ex);
                await Task.Delay(pauses[attempt], time, cancellationToken);
            }
        }
    }

    /// <inheritdoc cref="RetryTransientAsync{T}"/>
    public static Task RetryTransientAsync(Func<Task> write, IReadOnlyList<TimeSpan> pauses, TimeProvider time,
        Action<Exception>? retrying = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(write);
        return RetryTransientAsync(async () =>
        {
            await write();
            return true;
        }, pauses, time, retrying, cancellationToken);
    }
}
