using Microsoft.Extensions.Time.Testing;
using Npgsql;
using OrleansIot.Grains.Rules;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Rules;

/// <summary>
/// A bulk write of rule outputs (postgres, timeseries and queue actions) that fails for a passing reason is tried
/// again before its actions fail: a database restart must not send a stream batch's rows to the error action.
/// </summary>
public sealed class ActionBatchTests
{
    private sealed class Owner
    {
        public List<Exception> Failures { get; } = [];

        public Task Fail(Exception ex)
        {
            Failures.Add(ex);
            return Task.CompletedTask;
        }
    }

    /// <summary>A fake clock that counts the timers made on it: a pause has begun once its timer exists.</summary>
    private sealed class Clock : FakeTimeProvider
    {
        private int _timers;

        public int Timers => Volatile.Read(ref _timers);

        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
        {
            Interlocked.Increment(ref _timers);
            return base.CreateTimer(callback, state, dueTime, period);
        }
    }

    /// <summary>What a pooled connection says after the server restarted: PostgreSQL's admin_shutdown, transient.</summary>
    private static PostgresException AdminShutdown() =>
        new("terminating connection due to administrator command", "FATAL", "FATAL", "57P01");

    [Fact]
    public async Task AWriteThatFailsForAPassingReason_IsTriedAgain_AndItsActionsDoNotFail()
    {
        var clock = new Clock();
        var batch = new ActionBatch(clock);
        var owner = new Owner();
        var written = new List<int>();
        var attempts = 0;
        Task Write(IReadOnlyList<int> rows)
        {
            if (++attempts <= 3)
            {
                throw AdminShutdown();
            }

            written.AddRange(rows);
            return Task.CompletedTask;
        }

        batch.Add<int>("table", "r", "PostgresAction", Write, 1, owner.Fail);
        batch.Add<int>("table", "r", "PostgresAction", Write, 2, owner.Fail);
        var flush = batch.FlushAsync();
        // The pauses are the clock's: 100 ms, 250 ms, 500 ms before the second, third and fourth tries.
        for (var i = 0; i < 3; i++)
        {
            var made = i + 1;
            await Eventually.True(() => Task.FromResult(clock.Timers == made), "a pause before the next try");
            Assert.False(flush.IsCompleted, "the batch waits before trying again");
            clock.Advance(ActionBatch.RetryDelays[i] - TimeSpan.FromMilliseconds(1));
            Assert.Equal(made, attempts);   // not tried again before its pause is over
            clock.Advance(TimeSpan.FromMilliseconds(1));
        }

        await flush;
        Assert.Equal(4, attempts);
        Assert.Equal([1, 2], written);
        Assert.Empty(owner.Failures);
    }

    [Fact]
    public async Task AWriteThatKeepsFailing_FailsItsActionsAfterTheLastTry()
    {
        var clock = new Clock();
        var batch = new ActionBatch(clock);
        var owner = new Owner();
        var attempts = 0;
        batch.Add<int>("table", "r", "PostgresAction", _ => { attempts++; throw AdminShutdown(); }, 1, owner.Fail);
        var flush = batch.FlushAsync();
        for (var i = 0; i < ActionBatch.RetryDelays.Length; i++)
        {
            var made = i + 1;
            await Eventually.True(() => Task.FromResult(clock.Timers == made), "a pause before the next try");
            clock.Advance(ActionBatch.RetryDelays[i]);
        }

        await flush;
        Assert.Equal(ActionBatch.RetryDelays.Length + 1, attempts);
        Assert.IsType<PostgresException>(Assert.Single(owner.Failures));
    }

    [Fact]
    public async Task AWriteThatFailsForAReasonThatStays_FailsAtOnce()
    {
        var batch = new ActionBatch(new FakeTimeProvider());
        var owner = new Owner();
        var attempts = 0;
        // 42703 undefined_column: trying again cannot help.
        batch.Add<int>("table", "r", "PostgresAction", _ =>
        {
            attempts++;
            throw new PostgresException("column \"nosuchcolumn\" does not exist", "ERROR", "ERROR", "42703");
        }, 1, owner.Fail);
        await batch.FlushAsync();
        Assert.Equal(1, attempts);
        Assert.Single(owner.Failures);
    }
}
