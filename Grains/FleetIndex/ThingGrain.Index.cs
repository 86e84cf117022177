using Microsoft.Extensions.Logging;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.FleetIndex;
using OrleansIot.Grains.Shadows;

namespace OrleansIot.Grains.Things;

// The thing grain keeps its fleet-index entry current: each change writes the part it touched (registry, shadows or
// connectivity) and waits for the write before the change is acknowledged, so a search after the acknowledgement
// sees it. Connects and disconnects reach the connectivity part from the connection directory too, in batches, as most
// connections are never told to their thing until they end (Gateway/Mqtt/ClientConnectedHandler.cs). Then the thing checks the dynamic groups' queries against its entry and joins or leaves them. A failed
// index write does not fail the change (it is stored): it is logged, counted and repaired by a reindex shortly after.
internal sealed partial class ThingGrain
{
    private static readonly TimeSpan ReindexRetry = TimeSpan.FromSeconds(5);
    private static readonly IndexPart[] AllParts = [IndexPart.Registry, IndexPart.Shadow, IndexPart.Connectivity];

    // This activation's view of its registry record and groups (null: not read yet); the grain changes them itself,
    // except when a group is deleted (GroupDeleted tells it).
    private ThingRecord? _record;
    private IReadOnlyList<string>? _groups;
    private readonly IndexSection?[] _sections = new IndexSection?[3];
    private readonly bool[] _sectionKnown = new bool[3];
    private IGrainTimer? _reindexTimer;

    public async Task Reindex()
    {
        _groups = null;
        var registered = await RegistryRecordAsync() is not null;
        if (state.State.Registered != registered)
        {
            state.State.Registered = registered;
            await PersistAsync();
        }

        if (!registered)
        {
            indexBehind.Enqueue(ThingName, (IndexSection?)null);
            await indexBehind.FlushAsync();
            await index.RemoveAsync(ThingName);
            Array.Clear(_sectionKnown);
            return;
        }

        await WriteIndexAsync(AllParts, rethrow: true);
    }

    public async Task SyncDynamicGroup(DynamicGroupQuery group)
    {
        if (!state.State.Registered || await RegistryRecordAsync() is null)
        {
            return;
        }

        // Connectivity is written by the connection directory, not by this grain: read it afresh.
        _sectionKnown[(int)IndexPart.Connectivity] = false;
        var configuration = (await indexView.CurrentAsync()).Configuration;
        var entry = await EntryAsync(configuration);
        var member = (await RegistryGroupsAsync()).Contains(group.ThingGroupName);
        if (MemoryFleetIndex.Matches(FleetIndexView.ParseStored(group.QueryString).Root, entry) != member)
        {
            await SetDynamicMembershipAsync(group.ThingGroupName, join: !member);

            // Not the other groups' check: this node's copy of the queries may still hold this group's old query.
            await WriteIndexAsync([IndexPart.Registry], rethrow: false, followGroups: false);
        }
    }

    public async Task GroupDeleted(ThingGroupRecord group)
    {
        _groups = null;
        await AccessChangedAsync();
        await LeaveJobsAsync(group);
        await IndexAsync(IndexPart.Registry);
    }

    /// <summary>After a change of these parts (a registered thing only; the others have no entry).</summary>
    private Task IndexAsync(params IndexPart[] parts) => state.State.Registered ? WriteIndexAsync(parts, rethrow: false) : Task.CompletedTask;

    private async Task IndexShadowAsync(string shadowName)
    {
        if (!state.State.Registered)
        {
            return;
        }

        bool indexed;
        try
        {
            indexed = (await indexView.CurrentAsync()).Configuration.IndexesShadow(shadowName);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            IndexFailed(ex);   // the settings could not be read: the shadow is stored; the reindex repairs the entry
            return;
        }

        if (!indexed)
        {
            return;
        }

        // Without dynamic groups nothing here needs the section now: the write-behind builds it when it writes, from
        // the stored rows (immutable strings), once per round however often the thing updated in between.
        var current = await indexView.CurrentAsync();
        if (current.DynamicGroups.Count == 0 && current.Configuration.Shadow && _storedRows is { } rows && _record is not null)
        {
            var configuration = current.Configuration;
            StoredShadow[] indexedRows = [.. rows.Values.Where(r => r.Document is not null && (r.ShadowName.Length == 0 || configuration.IndexesShadow(r.ShadowName)))];
            indexBehind.Enqueue(ThingName, () => IndexFields.ShadowsFromStored(indexedRows));
            _sectionKnown[(int)IndexPart.Shadow] = false;   // built again from the documents if this activation needs it
            return;
        }

        await WriteIndexAsync([IndexPart.Shadow], rethrow: false);
    }

    private async Task WriteIndexAsync(IndexPart[] parts, bool rethrow, bool followGroups = true)
    {
        try
        {
            var current = await indexView.CurrentAsync();
            var configuration = current.Configuration;
            if (!configuration.Registry)
            {
                return;   // the index is off: nothing to keep (turning it on rebuilds it)
            }

            var writes = new List<IndexPartWrite>(parts.Length);
            foreach (var part in parts)
            {
                writes.Add(new IndexPartWrite(part, await BuildAsync(part, configuration)));
            }

            // The shadow part, the one that changes most, is written behind; the others now.
            if (writes.Find(w => w.Part == IndexPart.Shadow) is { } shadow)
            {
                indexBehind.Enqueue(ThingName, shadow.Section);
            }

            if (writes.Exists(w => w.Part != IndexPart.Shadow))
            {
                await index.WriteAsync(ThingName, [.. writes.Where(w => w.Part != IndexPart.Shadow)]);
            }

            foreach (var write in writes)
            {
                _sections[(int)write.Part] = write.Section;
                _sectionKnown[(int)write.Part] = true;
            }

            if (followGroups && current.DynamicGroups.Count > 0)
            {
                await FollowDynamicGroupsAsync(current.DynamicGroups, configuration);
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException && !rethrow)
        {
            IndexFailed(ex);
        }
    }

    /// <summary>Before this activation ends: its shadow section waiting on this node is written, so an activation elsewhere cannot be overtaken by it.</summary>
    private async Task FlushIndexAsync()
    {
        if (indexBehind.Holds(ThingName))
        {
            try
            {
                await indexBehind.FlushAsync();
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                IndexFailed(ex);
            }
        }
    }

    private void IndexFailed(Exception ex)
    {
        FleetIndexMetrics.WriteFailed.Add(1);
        LogIndexFailed(logger, ex, ThingName);
        Array.Clear(_sectionKnown);
        _reindexTimer ??= this.RegisterGrainTimer(
            static async grain =>
            {
                grain._reindexTimer?.Dispose();
                grain._reindexTimer = null;
                try
                {
                    await grain.Reindex();
                }
                catch (Exception again) when (again is not OperationCanceledException)
                {
                    grain.IndexFailed(again);
                }
            },
            this,
            new GrainTimerCreationOptions(ReindexRetry, Timeout.InfiniteTimeSpan) { KeepAlive = true });
    }

    private async Task<IndexSection?> BuildAsync(IndexPart part, IndexingConfiguration configuration)
    {
        if (!configuration.Registry || await RegistryRecordAsync() is not { } record)
        {
            return null;
        }

        switch (part)
        {
            case IndexPart.Registry:
                return IndexFields.Registry(record, await RegistryGroupsAsync());
            case IndexPart.Shadow when configuration.Shadow:
                var shadows = await ShadowsAsync();
                var classic = shadows.TryGetValue("", out var doc) && doc.Exists ? Indexed(doc) : null;
                var named = shadows.Where(s => s.Key.Length > 0 && s.Value.Exists && configuration.IndexesShadow(s.Key))
                    .OrderBy(s => s.Key, StringComparer.Ordinal)
                    .Select(s => (s.Key, Indexed(s.Value)))
                    .ToList();
                return IndexFields.Shadows(classic, named);
            case IndexPart.Connectivity when configuration.Connectivity:
                var (c, firstSeen) = await ConnectivityNowAsync();
                if (firstSeen is null)
                {
                    return null;
                }

                var at = c.Connected ? c.Since : c.LastDisconnectAt ?? c.Since;
                return IndexFields.Connectivity(c.Connected, at?.ToUnixTimeMilliseconds() ?? 0, c.Connected ? null : c.DisconnectReason);
            default:
                return null;
        }
    }

    private static IndexedShadow Indexed(Shadows.ShadowDocument doc) => new(doc.Desired, doc.Reported, doc.DesiredMetadata, doc.ReportedMetadata, doc.Version);

    /// <summary>The thing's whole entry as the index holds it (parts not written in this activation are built).</summary>
    private async Task<IndexedThing> EntryAsync(IndexingConfiguration configuration)
    {
        var entry = new IndexedThing(ThingName);
        foreach (var part in AllParts)
        {
            if (!_sectionKnown[(int)part])
            {
                _sections[(int)part] = await BuildAsync(part, configuration);
                _sectionKnown[(int)part] = true;
            }

            if (_sections[(int)part] is { } section)
            {
                entry.Parts[(int)part] = (section.Document, IndexFields.Parse(section.Fields));
            }
        }

        return entry;
    }

    private async Task FollowDynamicGroupsAsync(IReadOnlyList<(string Group, FleetQuery Query)> groups, IndexingConfiguration configuration)
    {
        var entry = await EntryAsync(configuration);
        var current = await RegistryGroupsAsync();
        var changed = false;
        foreach (var (group, query) in groups)
        {
            var member = current.Contains(group);
            if (MemoryFleetIndex.Matches(query.Root, entry) != member)
            {
                changed |= await SetDynamicMembershipAsync(group, join: !member);
            }
        }

        if (changed)
        {
            // Membership is in the registry part (thingGroupNames). Written once: a query on thingGroupNames that
            // names a dynamic group is seen at the thing's next change.
            var section = await BuildAsync(IndexPart.Registry, configuration);
            await index.WriteAsync(ThingName, IndexPart.Registry, section);
            _sections[(int)IndexPart.Registry] = section;
        }
    }

    private async Task<bool> SetDynamicMembershipAsync(string groupName, bool join)
    {
        if (await registry.GetThingGroupAsync(groupName) is not { IsDynamic: true } group || await RegistryRecordAsync() is not { } thing)
        {
            return false;
        }

        if (join)
        {
            if (!await registry.AddMemberAsync(groupName, ThingName))
            {
                return false;
            }

            _groups = null;
            await JoinedAsync(group, thing);
        }
        else
        {
            await registry.RemoveMemberAsync(groupName, ThingName);
            _groups = null;
            await LeftAsync(group, thing);
        }

        FleetIndexMetrics.DynamicMembershipChanges.Add(1);
        return true;
    }

    private async Task<ThingRecord?> RegistryRecordAsync()
    {
        if (_groups is null)
        {
            _record = await registry.GetThingAsync(ThingName);
            _groups = _record is null ? [] : await registry.GroupsOfAsync(ThingName);
        }

        return _record;
    }

    private async Task<IReadOnlyList<string>> RegistryGroupsAsync()
    {
        await RegistryRecordAsync();
        return _groups!;
    }

    /// <summary>The registry changed here: this activation's copy follows (groups are read again when needed).</summary>
    private void RegistryChanged(ThingRecord? record, bool groupsChanged)
    {
        if (_groups is not null)
        {
            _record = record;
        }

        if (groupsChanged || record is null)
        {
            _groups = null;
        }
    }

    [LoggerMessage(EventId = 2403, Level = LogLevel.Warning, Message = "Could not write the fleet-index entry of thing {ThingName}; it is reindexed shortly")]
    private static partial void LogIndexFailed(ILogger logger, Exception exception, string thingName);
}
