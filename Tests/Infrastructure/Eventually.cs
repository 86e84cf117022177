namespace OrleansIot.Tests.Infrastructure;

/// <summary>Waits for an effect instead of sleeping: polls until the condition holds or the timeout passes.</summary>
public static class Eventually
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(15);

    public static async Task<T> Get<T>(Func<Task<T>> probe, Func<T, bool> done, string what, TimeSpan? timeout = null)
    {
        // Elapsed time from the monotonic clock: a wall-clock step (NTP, a faked date) neither ends nor stretches the wait.
        var waited = System.Diagnostics.Stopwatch.StartNew();
        var limit = timeout ?? DefaultTimeout;
        var last = default(T);
        Exception? lastError = null;
        while (waited.Elapsed < limit)
        {
            try
            {
                last = await probe();
                if (done(last))
                {
                    return last;
                }
            }
            catch (Exception ex)
            {
                lastError = ex;
            }

            await Task.Delay(50);
        }

        throw new TimeoutException($"Timed out waiting for {what}; last value: {last}", lastError);
    }

    public static Task True(Func<Task<bool>> probe, string what, TimeSpan? timeout = null) => Get(probe, b => b, what, timeout);
}
