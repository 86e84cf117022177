using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Usage metering, the cost tenet: <c>GET /api/usage?thingName=|thingGroupName=&amp;from=&amp;to=</c> answers a thing's
/// (or a thing group's members', summed) usage per UTC day: messages and bytes in and out, dropped messages,
/// connected minutes and shadow operations. <c>from</c> and <c>to</c> are dates (<c>yyyy-MM-dd</c>, inclusive; the
/// last 7 days by default, at most 366).
/// </summary>
public static class UsageApi
{
    /// <summary>Most members a group's usage adds up (each is one grain call).</summary>
    public const int MaxGroupMembers = 10_000;

    private const int MaxDays = 366;

    public static IEndpointRouteBuilder MapUsageApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapGet("/usage", GetUsageAsync).WithTags("Usage").WithName("GetUsage").ChangedBy(Grains.Abstractions.ApiKeys.ApiKeyRoles.Operator);
        return endpoints;
    }

    public sealed record UsageRequest(string? ThingName, string? ThingGroupName, string? From, string? To);

    public sealed record UsageTotals(long MessagesIn, long BytesIn, long MessagesOut, long BytesOut, long MessagesDropped, double ConnectedMinutes, long ShadowOperations, long RuleExecutions, long JobExecutions);

    public sealed record UsageResponse(string? ThingName, string? ThingGroupName, int Things, string From, string To, IReadOnlyList<DailyUsage> Days, UsageTotals Total);

    private static async Task<Ok<UsageResponse>> GetUsageAsync([AsParameters] UsageRequest request, IGrainFactory grains, TimeProvider time)
    {
        var thing = QueryValues.Optional(request.ThingName);
        var group = QueryValues.Optional(request.ThingGroupName);
        if ((thing is null) == (group is null))
        {
            throw ApiException.Invalid("Give either thingName or thingGroupName.");
        }

        var today = DateOnly.FromDateTime(time.GetUtcNow().UtcDateTime);
        var to = Date(request.To, "to") ?? today;
        var from = Date(request.From, "from") ?? to.AddDays(-6);
        if (from > to || to.DayNumber - from.DayNumber + 1 > MaxDays)
        {
            throw ApiException.Invalid($"from must not be after to, and the range at most {MaxDays} days.");
        }

        IReadOnlyList<string> things = thing is not null ? [thing] : await MembersAsync(grains, group!);
        var days = Enumerable.Range(from.DayNumber, to.DayNumber - from.DayNumber + 1)
            .Select(d => new DailyUsage(Text(DateOnly.FromDayNumber(d)), 0, 0, 0, 0, 0, 0, 0)).ToArray();
        foreach (var chunk in things.Chunk(64))
        {
            foreach (var usage in await Task.WhenAll(chunk.Select(t => grains.Reference<IThingGrain>(t).GetDailyUsage(from, to))))
            {
                for (var i = 0; i < days.Length; i++)
                {
                    var (a, b) = (days[i], usage[i]);
                    days[i] = a with
                    {
                        MessagesIn = a.MessagesIn + b.MessagesIn,
                        BytesIn = a.BytesIn + b.BytesIn,
                        MessagesOut = a.MessagesOut + b.MessagesOut,
                        BytesOut = a.BytesOut + b.BytesOut,
                        MessagesDropped = a.MessagesDropped + b.MessagesDropped,
                        ConnectedMinutes = Math.Round(a.ConnectedMinutes + b.ConnectedMinutes, 2),
                        ShadowOperations = a.ShadowOperations + b.ShadowOperations,
                        RuleExecutions = a.RuleExecutions + b.RuleExecutions,
                        JobExecutions = a.JobExecutions + b.JobExecutions,
                    };
                }
            }
        }

        if (thing is not null && days.All(d => d is { MessagesIn: 0, MessagesOut: 0, ShadowOperations: 0, ConnectedMinutes: 0, RuleExecutions: 0, JobExecutions: 0 })
            && await grains.Reference<IThingGrain>(thing).GetStatus() is null && await grains.Reference<IThingGrain>(thing).DescribeThing() is null)
        {
            throw ApiException.NotFound($"Thing {thing} is not registered and has no usage.");
        }

        var total = new UsageTotals(
            days.Sum(d => d.MessagesIn), days.Sum(d => d.BytesIn), days.Sum(d => d.MessagesOut), days.Sum(d => d.BytesOut),
            days.Sum(d => d.MessagesDropped), Math.Round(days.Sum(d => d.ConnectedMinutes), 2), days.Sum(d => d.ShadowOperations),
            days.Sum(d => d.RuleExecutions), days.Sum(d => d.JobExecutions));
        return TypedResults.Ok(new UsageResponse(thing, group, things.Count, Text(from), Text(to), days, total));
    }

    /// <summary>The group's members, its subgroups' included (AWS's recursive listing).</summary>
    private static async Task<IReadOnlyList<string>> MembersAsync(IGrainFactory grains, string group)
    {
        _ = await grains.GetGrain<IThingGroupGrain>(group).Describe() ?? throw ApiException.NotFound($"Thing group {group} cannot be found.");
        var registry = grains.GetGrain<IRegistryQueryGrain>(0);
        var members = new List<string>();
        string? next = null;
        do
        {
            var page = await registry.ListThingsInThingGroup(group, recursive: true, next, 250);
            members.AddRange(page.Items);
            next = page.NextToken;
            if (members.Count > MaxGroupMembers)
            {
                throw ApiException.LimitExceeded($"Thing group {group} has more than {MaxGroupMembers} members: ask for its things one by one, or for a smaller group.");
            }
        }
        while (next is not null);
        return members.Distinct(StringComparer.Ordinal).ToList();
    }

    private static DateOnly? Date(string? text, string name) =>
        string.IsNullOrEmpty(text) ? null
        : DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var date) ? date
        : throw ApiException.Invalid($"{name} '{text}' is not a date (yyyy-MM-dd).");

    private static string Text(DateOnly date) => date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
