using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Grains.Sessions;

/// <summary>The client ids one node incarnation hosts, for whoever adopts them if it dies. Written in batches.</summary>
[GrainType("node-sessions")]
internal sealed class NodeSessionsGrain(
    [PersistentState("node-sessions", StorageNames.Default)] IPersistentState<NodeSessionsState> state) : Grain, INodeSessionsGrain
{
    /// <summary>How long the list of an adopted node stays readable (in memory) for the nodes replaying messages to its sessions.</summary>
    private static readonly TimeSpan KeptAfterAdoption = TimeSpan.FromMinutes(10);

    private IReadOnlyList<HostedSession> _adopted = [];

    public async Task Update(IReadOnlyList<HostedSession> upserted, IReadOnlyList<string> removedClientIds)
    {
        var sessions = state.State.Sessions;
        foreach (var clientId in removedClientIds)
        {
            sessions.Remove(clientId);
        }

        foreach (var hosted in upserted)
        {
            sessions[hosted.ClientId] = hosted;
        }

        await state.WriteStateAsync();
    }

    public Task<IReadOnlyList<HostedSession>> Get() =>
        Task.FromResult<IReadOnlyList<HostedSession>>(state.State.Sessions.Count > 0 ? [.. state.State.Sessions.Values] : _adopted);

    public async Task Clear()
    {
        // Storage forgets the dead node now; the other nodes may still be replaying what they had sent it, so the
        // list stays readable for a while.
        _adopted = [.. state.State.Sessions.Values];
        if (state.RecordExists)
        {
            await state.ClearStateAsync();   // most shards of a small node were never written
        }

        DelayDeactivation(KeptAfterAdoption);
    }
}

// Stored as JSON (System.Text.Json): the property names are the storage schema. Append, never rename.
[GenerateSerializer, Alias("OrleansIot.NodeSessionsState")]
public sealed class NodeSessionsState
{
    [Id(0)] public Dictionary<string, HostedSession> Sessions { get; set; } = new(StringComparer.Ordinal);
}
