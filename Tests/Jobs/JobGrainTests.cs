using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Jobs;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Jobs;

/// <summary>
/// Jobs on the grains with the clock in the test's hands: the rollout rate, in-progress and step timeouts, retries,
/// abort criteria, cancel and delete, and AWS's execution state machine.
/// </summary>
[Collection(FakeClockClusterCollection.Name)]
public sealed class JobGrainTests(FakeClockClusterFixture fixture)
{
    private IGrainFactory Grains => fixture.Grains;

    private async Task<List<string>> ThingsAsync(string prefix, int count)
    {
        var things = Enumerable.Range(0, count).Select(_ => Ids.NewId(prefix)).ToList();
        foreach (var thing in things)
        {
            await Grains.GetGrain<IThingGrain>(thing).CreateThing(null, null);
        }

        return things;
    }

    private static JobSpec Spec(IEnumerable<string> things, JobRollout? rollout = null, IReadOnlyList<JobAbortCriteria>? abort = null, long? timeout = null,
        IReadOnlyList<JobRetryCriteria>? retry = null, string document = """{"op":"x"}""") =>
        new([.. things.Select(JobsOverMqttTests.ThingArn)], document, null, null, null, rollout, abort, timeout, retry, null, null, null);

    private async Task<JobRecord> DescribeAsync(string jobId) => (await Grains.GetGrain<IJobGrain>(jobId).Describe())!;

    /// <summary>
    /// Moves the clock in one-second steps; after each, a call to the job waits behind the rollout step the timer
    /// queued (a timer's turn does not interleave with calls).
    /// </summary>
    private async Task AdvanceAsync(string jobId, TimeSpan by)
    {
        for (var passed = TimeSpan.Zero; passed < by; passed += TimeSpan.FromSeconds(1))
        {
            fixture.Clock.Advance(TimeSpan.FromSeconds(1));
            await DescribeAsync(jobId);
        }
    }

    [Fact]
    public async Task Rollout_QueuesNoMoreThanMaximumPerMinute_AndReachesEveryThing()
    {
        var things = await ThingsAsync("roll", 25);
        var jobId = Ids.NewId("rate");
        await Grains.GetGrain<IJobGrain>(jobId).Create(Spec(things, new JobRollout(10, null)));

        var first = await Eventually.Get(() => DescribeAsync(jobId), j => j.ProcessDetails.NumberOfQueuedThings == 1, "the first execution");
        Assert.Equal(24, first.ProcessDetails.NumberOfPendingRollout);
        Assert.Equal(10, first.ProcessDetails.CurrentRatePerMinute);

        await AdvanceAsync(jobId, TimeSpan.FromSeconds(30));
        var half = await DescribeAsync(jobId);
        Assert.InRange(half.ProcessDetails.NumberOfQueuedThings, 5, 6);   // one at the start, then one every 6 s

        await AdvanceAsync(jobId, TimeSpan.FromSeconds(30));
        var minute = await Eventually.Get(() => DescribeAsync(jobId), j => j.ProcessDetails.NumberOfQueuedThings >= 11, "a minute's executions");
        Assert.Equal(11, minute.ProcessDetails.NumberOfQueuedThings);

        await AdvanceAsync(jobId, TimeSpan.FromMinutes(2));
        var all = await Eventually.Get(() => DescribeAsync(jobId), j => j.ProcessDetails.NumberOfPendingRollout == 0, "every thing notified");
        Assert.Equal(25, all.ProcessDetails.NumberOfQueuedThings);
        foreach (var thing in things)
        {
            Assert.Equal(JobStatus.Queued, (await Grains.GetGrain<IThingJobsGrain>(thing).Describe(jobId, null))!.Status);
        }
    }

    [Fact]
    public async Task InProgressTimeout_TimesTheExecutionOut_ARetryQueuesItAgain_AndTheSecondTimeoutEndsIt()
    {
        var thing = (await ThingsAsync("slow", 1))[0];
        var jobId = Ids.NewId("timeout");
        await Grains.GetGrain<IJobGrain>(jobId).Create(Spec([thing], timeout: 5, retry: [new JobRetryCriteria(JobStatus.TimedOut, 1)]));
        var device = Grains.GetGrain<IThingJobsGrain>(thing);
        await Eventually.True(async () => await device.Describe(jobId, null) is not null, "the execution queued");

        var started = (await device.StartNext(null, null))!;
        Assert.Equal(fixture.Clock.GetUtcNow().AddMinutes(5), started.TimesOutAt);
        fixture.Clock.Advance(TimeSpan.FromMinutes(4));
        Assert.Equal(JobStatus.InProgress, (await device.Describe(jobId, null))!.Status);

        fixture.Clock.Advance(TimeSpan.FromMinutes(2));
        var retried = (await device.Describe(jobId, null))!;
        Assert.Equal((JobStatus.Queued, 2L, 1L), (retried.Status, retried.ExecutionNumber, retried.VersionNumber));
        Assert.Contains(RecordingBroker.Shared.On($"$aws/events/jobExecution/{jobId}/timed_out"), e => e.Contains("\"executionNumber\":1", StringComparison.Ordinal));

        await device.StartNext(null, null);
        fixture.Clock.Advance(TimeSpan.FromMinutes(6));
        var ended = (await device.Describe(jobId, null))!;
        Assert.Equal((JobStatus.TimedOut, 2L), (ended.Status, ended.ExecutionNumber));
        var job = await Eventually.Get(() => DescribeAsync(jobId), j => j.Status == JobStatus.Completed, "the job completed");
        Assert.Equal(1, job.ProcessDetails.NumberOfTimedOutThings);
        // Describe shows COMPLETED as soon as the state says so; the event follows the state's write.
        var completed = await Eventually.Get(() => Task.FromResult(RecordingBroker.Shared.On($"$aws/events/job/{jobId}/completed")), e => e.Count > 0, "the completed event");
        Assert.Contains("\"numberOfTimedOutThings\":1", Assert.Single(completed), StringComparison.Ordinal);
    }

    [Fact]
    public async Task StepTimeout_ReplacesThePreviousOne_NeverOutlivesTheInProgressTimeout_AndMinusOneClearsIt()
    {
        var thing = (await ThingsAsync("step", 1))[0];
        var jobId = Ids.NewId("step");
        await Grains.GetGrain<IJobGrain>(jobId).Create(Spec([thing], timeout: 60));
        var device = Grains.GetGrain<IThingJobsGrain>(thing);
        await Eventually.True(async () => await device.Describe(jobId, null) is not null, "the execution queued");
        var t0 = fixture.Clock.GetUtcNow();

        Assert.Equal(t0.AddMinutes(10), (await device.StartNext(null, 10))!.TimesOutAt);
        Assert.Equal(t0.AddMinutes(60), (await device.Update(jobId, new JobExecutionUpdate(JobStatus.InProgress, null, null, null, 120))).TimesOutAt);
        Assert.Equal(t0.AddMinutes(3), (await device.Update(jobId, new JobExecutionUpdate(JobStatus.InProgress, null, null, null, 3))).TimesOutAt);
        Assert.Equal(t0.AddMinutes(60), (await device.Update(jobId, new JobExecutionUpdate(JobStatus.InProgress, null, null, null, -1))).TimesOutAt);
        fixture.Clock.Advance(TimeSpan.FromMinutes(5));
        Assert.Equal(JobStatus.InProgress, (await device.Describe(jobId, null))!.Status);   // the cleared step timer did not fire
    }

    [Fact]
    public async Task AbortCriteria_CancelTheQueuedExecutions_AndLeaveTheOnesInProgress()
    {
        var things = await ThingsAsync("abort", 6);
        var jobId = Ids.NewId("abort");
        await Grains.GetGrain<IJobGrain>(jobId).Create(Spec(things, abort: [new JobAbortCriteria(JobStatus.Failed, "CANCEL", 50, 2)]));
        await Eventually.Get(() => DescribeAsync(jobId), j => j.ProcessDetails.NumberOfQueuedThings == 6, "all queued");

        await Grains.GetGrain<IThingJobsGrain>(things[2]).StartNext(null, null);
        await Grains.GetGrain<IThingJobsGrain>(things[0]).Update(jobId, new JobExecutionUpdate(JobStatus.Failed, null, null, null, null));
        Assert.Equal(JobStatus.InProgress, (await DescribeAsync(jobId)).Status);   // one executed thing: below the minimum of 2
        await Grains.GetGrain<IThingJobsGrain>(things[1]).Update(jobId, new JobExecutionUpdate(JobStatus.Failed, null, null, null, null));

        var job = await Eventually.Get(() => DescribeAsync(jobId), j => j.ProcessDetails.NumberOfCanceledThings == 3, "the queued executions canceled");
        Assert.Equal((JobStatus.Canceled, "ABORTED"), (job.Status, job.ReasonCode));
        Assert.Equal((2, 1, 0), (job.ProcessDetails.NumberOfFailedThings, job.ProcessDetails.NumberOfInProgressThings, job.ProcessDetails.NumberOfQueuedThings));
        Assert.Equal(JobStatus.InProgress, (await Grains.GetGrain<IThingJobsGrain>(things[2]).Describe(jobId, null))!.Status);
        Assert.Equal(JobStatus.Canceled, (await Grains.GetGrain<IThingJobsGrain>(things[5]).Describe(jobId, null))!.Status);
        Assert.Single(RecordingBroker.Shared.On($"$aws/events/job/{jobId}/canceled"));
    }

    [Fact]
    public async Task CancelJob_WithForce_CancelsExecutionsInProgress_AndDeleteNeedsForceWhileInProgress()
    {
        var things = await ThingsAsync("cancel", 2);
        var jobId = Ids.NewId("cancel");
        var job = Grains.GetGrain<IJobGrain>(jobId);
        await job.Create(Spec(things));
        await Eventually.Get(() => DescribeAsync(jobId), j => j.ProcessDetails.NumberOfQueuedThings == 2, "both queued");
        await Grains.GetGrain<IThingJobsGrain>(things[0]).StartNext(null, null);

        var delete = await Assert.ThrowsAsync<ApiException>(() => job.Delete(force: false));
        Assert.Equal("InvalidStateTransitionException", delete.Code);

        await job.Cancel("maintenance", "no longer needed", force: false);
        await Eventually.Get(() => DescribeAsync(jobId), j => j.ProcessDetails.NumberOfCanceledThings == 1, "the queued one canceled");
        Assert.Equal(JobStatus.InProgress, (await Grains.GetGrain<IThingJobsGrain>(things[0]).Describe(jobId, null))!.Status);
        Assert.Equal("InvalidStateTransitionException", (await Assert.ThrowsAsync<ApiException>(() => job.Cancel(null, null, force: false))).Code);

        var forced = await job.Cancel(null, null, force: true);
        Assert.True(forced.ForceCanceled);
        var canceled = await Eventually.Get(() => Grains.GetGrain<IThingJobsGrain>(things[0]).Describe(jobId, null), e => e!.Status == JobStatus.Canceled, "the one in progress canceled");
        Assert.True(canceled!.ForceCanceled);

        await job.Delete(force: false);
        Assert.Null(await job.Describe());
        Assert.Null(await Grains.GetGrain<IThingJobsGrain>(things[1]).Describe(jobId, null));
        Assert.DoesNotContain(jobId, (await Grains.GetGrain<IJobCatalogGrain>(0).Page(null, null, 1000)).Items);
    }

    [Fact]
    public async Task Metrics_CountExecutionsEnteringEachState_PerJob()
    {
        var jobId = Ids.NewId("metered");
        var seen = new System.Collections.Concurrent.ConcurrentQueue<string>();
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Name == "OrleansIot.Jobs" && instrument.Name == "iot.jobs.executions")
            {
                l.EnableMeasurementEvents(instrument);
            }
        };
        listener.SetMeasurementEventCallback<long>((_, value, tags, _) =>
        {
            string? job = null, status = null;
            foreach (var tag in tags)
            {
                (job, status) = tag.Key switch { "job" => ((string?)tag.Value, status), "status" => (job, (string?)tag.Value), _ => (job, status) };
            }

            if (job == jobId)
            {
                seen.Enqueue($"{status}:{value}");
            }
        });
        listener.Start();
        var thing = (await ThingsAsync("meter", 1))[0];
        var device = Grains.GetGrain<IThingJobsGrain>(thing);
        await Grains.GetGrain<IJobGrain>(jobId).Create(Spec([thing], retry: [new JobRetryCriteria(JobStatus.Failed, 1)]));
        await Eventually.True(async () => await device.Describe(jobId, null) is not null, "the execution queued");
        await device.StartNext(null, null);
        await device.Update(jobId, new JobExecutionUpdate(JobStatus.InProgress, new Dictionary<string, string> { ["p"] = "50" }, null, null, null));
        await device.Update(jobId, new JobExecutionUpdate(JobStatus.Failed, null, null, null, null));
        await device.Update(jobId, new JobExecutionUpdate(JobStatus.Succeeded, null, null, null, null));

        // Queued, started (a second IN_PROGRESS update is not a new state), failed and retried, succeeded.
        Assert.Equal(["QUEUED:1", "IN_PROGRESS:1", "FAILED:1", "QUEUED:1", "SUCCEEDED:1"], seen);
    }

    public static TheoryData<string, string, string> IllegalUpdates => new()
    {
        { JobStatus.Succeeded, JobStatus.InProgress, "InvalidStateTransitionException" },
        { JobStatus.Failed, JobStatus.Succeeded, "InvalidStateTransitionException" },
        { JobStatus.Rejected, JobStatus.Rejected, "InvalidStateTransitionException" },
        { JobStatus.Queued, JobStatus.Queued, "InvalidRequestException" },
        { JobStatus.Queued, JobStatus.Canceled, "InvalidRequestException" },
        { JobStatus.Queued, JobStatus.TimedOut, "InvalidRequestException" },
        { JobStatus.InProgress, JobStatus.Removed, "InvalidRequestException" },
    };

    [Theory]
    [MemberData(nameof(IllegalUpdates))]
    public async Task Devices_MakeOnlyAwsTransitions_AndARefusedUpdateChangesNothing(string from, string to, string error)
    {
        var thing = (await ThingsAsync("fsm", 1))[0];
        var jobId = Ids.NewId("fsm");
        await Grains.GetGrain<IJobGrain>(jobId).Create(Spec([thing]));
        var device = Grains.GetGrain<IThingJobsGrain>(thing);
        await Eventually.True(async () => await device.Describe(jobId, null) is not null, "the execution queued");
        if (from != JobStatus.Queued)
        {
            await device.Update(jobId, new JobExecutionUpdate(from, null, null, null, null));
        }

        var before = (await device.Describe(jobId, null))!;
        var refused = await Assert.ThrowsAsync<ApiException>(() => device.Update(jobId, new JobExecutionUpdate(to, new Dictionary<string, string> { ["x"] = "y" }, null, null, null)));
        Assert.Equal(error, refused.Code);
        var after = (await device.Describe(jobId, null))!;
        Assert.Equal((before.Status, before.VersionNumber, before.StatusDetails.Count), (after.Status, after.VersionNumber, after.StatusDetails.Count));
    }

    [Fact]
    public async Task Executions_AreGivenOutInProgressFirst_ThenInQueueOrder_AndNotifyNextFollowsTheHead()
    {
        var thing = (await ThingsAsync("order", 1))[0];
        var (a, b) = (Ids.NewId("a"), Ids.NewId("b"));
        var device = Grains.GetGrain<IThingJobsGrain>(thing);
        await Grains.GetGrain<IJobGrain>(a).Create(Spec([thing]));
        await Eventually.True(async () => await device.Describe(a, null) is not null, "a queued");
        await Grains.GetGrain<IJobGrain>(b).Create(Spec([thing]));
        await Eventually.True(async () => await device.Describe(b, null) is not null, "b queued");

        var pending = await device.GetPending();
        Assert.Equal([a, b], pending.Queued.Select(e => e.JobId));
        Assert.Equal(a, (await device.Describe("$next", null))!.JobId);
        await device.Update(b, new JobExecutionUpdate(JobStatus.InProgress, null, null, null, null));
        Assert.Equal(b, (await device.StartNext(null, null))!.JobId);   // the one in progress, unchanged
        Assert.Equal(2, (await device.Describe(b, null))!.VersionNumber);

        var nexts = RecordingBroker.Shared.On($"$aws/things/{thing}/jobs/notify-next");
        Assert.Equal([a, b], nexts.Select(n => System.Text.Json.Nodes.JsonNode.Parse(n)!["execution"]?["jobId"]?.GetValue<string>()));
        var notify = System.Text.Json.Nodes.JsonNode.Parse(RecordingBroker.Shared.On($"$aws/things/{thing}/jobs/notify")[^1])!;
        Assert.Equal(b, (string)notify["jobs"]!["IN_PROGRESS"]![0]!["jobId"]!);
        Assert.Equal(a, (string)notify["jobs"]!["QUEUED"]![0]!["jobId"]!);
    }

    public static TheoryData<string, string> BadSpecs => new()
    {
        { "document", "not json" },
        { "document", "[1,2]" },
        { "document", "{\"x\":\"" + new string('x', 33_000) + "\"}" },
        { "document", "{\"u\":\"${iot:artifact-url:nope}\"}" },
        { "rate", "0" },
        { "rate", "1001" },
        { "timeout", "0" },
        { "retry", "11" },
        { "abort", "101" },
        { "targets", "0" },
        { "targets", "arn:aws:s3:::bucket" },
    };

    [Theory]
    [MemberData(nameof(BadSpecs))]
    public async Task BadJobs_AreRefusedWithInvalidRequest_AndNothingIsCreated(string field, string value)
    {
        var thing = (await ThingsAsync("bad", 1))[0];
        var jobId = Ids.NewId("bad");
        var spec = field switch
        {
            "document" => Spec([thing], document: value),
            "rate" => Spec([thing], new JobRollout(int.Parse(value, System.Globalization.CultureInfo.InvariantCulture), null)),
            "timeout" => Spec([thing], timeout: long.Parse(value, System.Globalization.CultureInfo.InvariantCulture)),
            "retry" => Spec([thing], retry: [new JobRetryCriteria(JobStatus.Failed, int.Parse(value, System.Globalization.CultureInfo.InvariantCulture))]),
            "abort" => Spec([thing], abort: [new JobAbortCriteria(JobStatus.Failed, "CANCEL", double.Parse(value, System.Globalization.CultureInfo.InvariantCulture), 1)]),
            _ => Spec([]) with { Targets = value == "0" ? [] : [value] },
        };
        var refused = await Assert.ThrowsAsync<ApiException>(() => Grains.GetGrain<IJobGrain>(jobId).Create(spec));
        Assert.Equal("InvalidRequestException", refused.Code);
        Assert.Null(await Grains.GetGrain<IJobGrain>(jobId).Describe());
        Assert.Null(await Grains.GetGrain<IThingJobsGrain>(thing).Describe(jobId, null));
    }

    [Fact]
    public async Task UnknownTargets_AreNotFound_AndATakenIdIsAlreadyExists()
    {
        var jobId = Ids.NewId("targets");
        var missing = await Assert.ThrowsAsync<ApiException>(() => Grains.GetGrain<IJobGrain>(jobId).Create(Spec([Ids.NewId("ghost")])));
        Assert.Equal("ResourceNotFoundException", missing.Code);
        var group = await Assert.ThrowsAsync<ApiException>(() => Grains.GetGrain<IJobGrain>(jobId).Create(Spec([]) with { Targets = [$"arn:aws:iot:local:000000000000:thinggroup/{Ids.NewId("nogroup")}"] }));
        Assert.Equal("ResourceNotFoundException", group.Code);

        var thing = (await ThingsAsync("taken", 1))[0];
        await Grains.GetGrain<IJobGrain>(jobId).Create(Spec([thing]));
        Assert.Equal("ResourceAlreadyExistsException", (await Assert.ThrowsAsync<ApiException>(() => Grains.GetGrain<IJobGrain>(jobId).Create(Spec([thing])))).Code);
    }
}
