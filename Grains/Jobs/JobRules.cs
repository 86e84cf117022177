using System.Text.Json;
using System.Text.RegularExpressions;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Artifacts;
using OrleansIot.Grains.Abstractions.Jobs;

namespace OrleansIot.Grains.Jobs;

/// <summary>AWS's limits and checks for jobs and executions (AWS IoT Jobs quotas and the iot / iot-jobs-data service models).</summary>
internal static partial class JobRules
{
    public const int MaxDocumentBytes = 32 * 1024;
    public const int MaxDescription = 2028;
    public const int MaxTargets = 100;
    public const int MaxStatusDetails = 10;
    public const int MaxRatePerMinute = 1000;
    public const long MaxTimeoutMinutes = 10080;
    public const int MaxRetries = 10;

    public static void CheckJobId(string jobId, string what = "jobId")
    {
        if (!Id().IsMatch(jobId))
        {
            throw ApiException.Invalid($"{what} must be 1-64 characters of [a-zA-Z0-9_-].");
        }
    }

    /// <summary>A job document: a JSON object of at most 32 KB with at most 10 artifact placeholders.</summary>
    public static void CheckDocument(string document)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(document) > MaxDocumentBytes)
        {
            throw ApiException.Invalid($"The job document is larger than {MaxDocumentBytes} bytes.");
        }

        try
        {
            using var parsed = JsonDocument.Parse(document);
            if (parsed.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw ApiException.Invalid("The job document must be a JSON object.");
            }
        }
        catch (JsonException ex)
        {
            throw ApiException.Invalid($"The job document is not valid JSON: {ex.Message}");
        }

        if (ArtifactUrls.Referenced(document).Count > ArtifactUrls.MaxPlaceholders)
        {
            throw ApiException.Invalid($"The job document has more than {ArtifactUrls.MaxPlaceholders} placeholders.");
        }
    }

    /// <summary>AWS's <c>statusDetails</c>: at most 10 pairs, keys 1-128 of <c>[a-zA-Z0-9:_-]</c>, values 1-128 without control characters.</summary>
    public static Dictionary<string, string> CheckStatusDetails(IReadOnlyDictionary<string, string>? details)
    {
        if (details is null)
        {
            return new(StringComparer.Ordinal);
        }

        if (details.Count > MaxStatusDetails)
        {
            throw ApiException.Invalid($"statusDetails has {details.Count} entries; at most {MaxStatusDetails} are allowed.");
        }

        foreach (var (key, value) in details)
        {
            if (!DetailKey().IsMatch(key))
            {
                throw ApiException.Invalid($"statusDetails key '{key}' must be 1-128 characters of [a-zA-Z0-9:_-].");
            }

            if (value is null || value.Length is 0 or > 128 || value.Any(char.IsControl))
            {
                throw ApiException.Invalid($"statusDetails value of '{key}' must be 1-128 characters without control characters.");
            }
        }

        return new Dictionary<string, string>(details, StringComparer.Ordinal);
    }

    public static void CheckTimeout(long? minutes, string name, bool allowClear = false)
    {
        if (minutes is { } m && !(m is >= 1 and <= MaxTimeoutMinutes || (allowClear && m == -1)))
        {
            throw ApiException.Invalid($"{name} must be between 1 and {MaxTimeoutMinutes} minutes{(allowClear ? " (or -1 to clear it)" : "")}.");
        }
    }

    public static void CheckRollout(JobRollout? rollout)
    {
        if (rollout is null)
        {
            return;
        }

        if (rollout.MaximumPerMinute is { } max && max is < 1 or > MaxRatePerMinute)
        {
            throw ApiException.Invalid($"maximumPerMinute must be between 1 and {MaxRatePerMinute}.");
        }

        if (rollout.ExponentialRate is { } e)
        {
            if (e.BaseRatePerMinute is < 1 or > MaxRatePerMinute)
            {
                throw ApiException.Invalid($"baseRatePerMinute must be between 1 and {MaxRatePerMinute}.");
            }

            if (e.IncrementFactor is < 1.1 or > 5)
            {
                throw ApiException.Invalid("incrementFactor must be between 1.1 and 5.");
            }

            if ((e.NumberOfNotifiedThings is null) == (e.NumberOfSucceededThings is null) || (e.NumberOfNotifiedThings ?? e.NumberOfSucceededThings) < 1)
            {
                throw ApiException.Invalid("rateIncreaseCriteria needs exactly one of numberOfNotifiedThings or numberOfSucceededThings, at least 1.");
            }
        }
    }

    public static void CheckAbort(IReadOnlyList<JobAbortCriteria>? criteria)
    {
        foreach (var c in criteria ?? [])
        {
            if (c.FailureType is not (JobStatus.Failed or JobStatus.Rejected or JobStatus.TimedOut or "ALL"))
            {
                throw ApiException.Invalid($"abortConfig failureType '{c.FailureType}' must be FAILED, REJECTED, TIMED_OUT or ALL.");
            }

            if (c.Action != "CANCEL")
            {
                throw ApiException.Invalid($"abortConfig action '{c.Action}' must be CANCEL.");
            }

            if (c.ThresholdPercentage is <= 0 or > 100 || c.MinNumberOfExecutedThings < 1)
            {
                throw ApiException.Invalid("abortConfig needs thresholdPercentage in (0, 100] and minNumberOfExecutedThings of at least 1.");
            }
        }
    }

    public static void CheckRetry(IReadOnlyList<JobRetryCriteria>? criteria)
    {
        var total = 0;
        foreach (var c in criteria ?? [])
        {
            if (c.FailureType is not (JobStatus.Failed or JobStatus.TimedOut or "ALL"))
            {
                throw ApiException.Invalid($"jobExecutionsRetryConfig failureType '{c.FailureType}' must be FAILED, TIMED_OUT or ALL.");
            }

            if (c.NumberOfRetries is < 0 or > MaxRetries)
            {
                throw ApiException.Invalid($"numberOfRetries must be between 0 and {MaxRetries}.");
            }

            total += c.NumberOfRetries;
        }

        if (total > MaxRetries)
        {
            throw ApiException.Invalid($"A job may retry an execution at most {MaxRetries} times in all.");
        }
    }

    public static void CheckUrlLifetime(int? seconds)
    {
        if (seconds is { } s && s is < ArtifactUrls.MinLifetimeSeconds or > ArtifactUrls.MaxLifetimeSeconds)
        {
            throw ApiException.Invalid($"expiresInSec must be between {ArtifactUrls.MinLifetimeSeconds} and {ArtifactUrls.MaxLifetimeSeconds}.");
        }
    }

    /// <summary>AWS's InvalidStateTransitionException (409), naming the current state.</summary>
    public static ApiException InvalidTransition(string jobId, string from, string to) =>
        new(409, "InvalidStateTransitionException", $"Job execution of {jobId} cannot go from {from} to {to}.");

    /// <summary>AWS's VersionConflictException (409) for a stale <c>expectedVersion</c>.</summary>
    public static ApiException VersionMismatch(long expected, long current) =>
        new(409, "VersionConflictException", $"expectedVersion {expected} does not match the current version {current}.");

    [GeneratedRegex("^[a-zA-Z0-9_-]{1,64}$", RegexOptions.CultureInvariant)]
    public static partial Regex Id();

    [GeneratedRegex("^[a-zA-Z0-9:_-]{1,128}$", RegexOptions.CultureInvariant)]
    private static partial Regex DetailKey();
}
