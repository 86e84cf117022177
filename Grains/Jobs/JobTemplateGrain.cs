using System.Text.Json;
using System.Text.RegularExpressions;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Artifacts;
using OrleansIot.Grains.Abstractions.Jobs;
using OrleansIot.Grains.Catalogs;

namespace OrleansIot.Grains.Jobs;

/// <summary>A job template: checked as a job's settings are, stored, listed through the <c>job-templates</c> name catalog.</summary>
[GrainType("job-template")]
internal sealed partial class JobTemplateGrain(
    [PersistentState("job-template", StorageNames.Default)] IPersistentState<JobTemplateState> state,
    TimeProvider time) : Grain, IJobTemplateGrain
{
    public const string Catalog = "job-templates";

    private string TemplateId => this.GetPrimaryKeyString();

    public async Task<JobTemplateRecord> Create(JobTemplateRecord template)
    {
        JobRules.CheckJobId(TemplateId, "jobTemplateId");
        if (state.State.Template is not null)
        {
            throw new ApiException(409, "ConflictException", $"Job template {TemplateId} already exists.");
        }

        JobRules.CheckDocument(template.Document);
        if (template.Description is { Length: > JobRules.MaxDescription })
        {
            throw ApiException.Invalid($"description is longer than {JobRules.MaxDescription} characters.");
        }

        JobRules.CheckRollout(template.Rollout);
        JobRules.CheckAbort(template.Abort);
        JobRules.CheckTimeout(template.InProgressTimeoutInMinutes, "inProgressTimeoutInMinutes");
        JobRules.CheckRetry(template.Retry);
        JobRules.CheckUrlLifetime(template.PresignedUrlExpiresInSec);
        state.State.Template = template with { JobTemplateId = TemplateId, CreatedAt = time.GetUtcNow() };
        await state.WriteStateAsync();
        await GrainFactory.GetGrain<INameCatalogGrain>(Catalog).Add(TemplateId);
        return state.State.Template;
    }

    public Task<JobTemplateRecord?> Describe() => Task.FromResult(state.State.Template);

    public async Task Delete()
    {
        if (state.State.Template is null)
        {
            throw ApiException.NotFound($"Job template {TemplateId} cannot be found.");
        }

        await state.ClearStateAsync();
        state.State = new JobTemplateState();
        await GrainFactory.GetGrain<INameCatalogGrain>(Catalog).Remove(TemplateId);
    }

    /// <summary>
    /// A template's document with its <c>${aws:iot:parameter:&lt;name&gt;}</c> placeholders replaced by the job's
    /// <c>documentParameters</c> (JSON-escaped); a placeholder without a value, or a value without a placeholder, is
    /// refused. At most 10 substitutions with the artifact URLs (AWS).
    /// </summary>
    public static string Substitute(string document, IReadOnlyDictionary<string, string>? parameters)
    {
        var given = parameters ?? new Dictionary<string, string>();
        var named = Parameter().Matches(document).Select(m => m.Groups[1].Value).ToHashSet(StringComparer.Ordinal);
        if (named.FirstOrDefault(n => !given.ContainsKey(n)) is { } missing)
        {
            throw ApiException.Invalid($"documentParameters has no value for ${{aws:iot:parameter:{missing}}}.");
        }

        if (given.Keys.FirstOrDefault(k => !named.Contains(k)) is { } unused)
        {
            throw ApiException.Invalid($"documentParameters '{unused}' is not a parameter of the template's document.");
        }

        if (named.Count + ArtifactUrls.Referenced(document).Count > ArtifactUrls.MaxPlaceholders)
        {
            throw ApiException.Invalid($"The job document has more than {ArtifactUrls.MaxPlaceholders} substitutions.");
        }

        var result = Parameter().Replace(document, m => JsonEncodedText.Encode(given[m.Groups[1].Value]).Value);
        JobRules.CheckDocument(result);
        return result;
    }

    [GeneratedRegex(@"\$\{aws:iot:parameter:([a-zA-Z0-9_-]{1,128})\}", RegexOptions.CultureInvariant)]
    private static partial Regex Parameter();
}

/// <summary>Lists job templates from the name catalog.</summary>
[GrainType("job-template-list"), Orleans.Concurrency.StatelessWorker]
internal sealed class JobTemplateListGrain : Grain, IJobTemplateListGrain
{
    public Task<(IReadOnlyList<string> Ids, string? NextMarker)> Page(string? marker, int pageSize) =>
        GrainFactory.GetGrain<INameCatalogGrain>(JobTemplateGrain.Catalog).Page(marker, pageSize);
}

[GenerateSerializer, Alias("OrleansIot.JobTemplateState")]
public sealed class JobTemplateState
{
    [Id(0)] public JobTemplateRecord? Template { get; set; }
}
