namespace OrleansIot.Grains.Abstractions.Things;

/// <summary>
/// Whether a thing must hear of a connection at its start: when connectivity is indexed
/// (<c>thingConnectivityIndexingMode</c> <c>STATUS</c>) and a dynamic thing group's query reads <c>connectivity.*</c>,
/// so a thing joins and leaves such groups as it connects. A gateway asks at every connect. Otherwise the thing hears of
/// a connection once, at its end; the connection directory answers for the open connections and writes the index's
/// connectivity part in batches. A copy per node, refreshed as the index's settings are
/// (<c>Iot:FleetIndex:SettingsRefresh</c>).
/// </summary>
public interface IConnectivityIndexing
{
    /// <summary>True when a dynamic group follows connectivity; also true when the settings cannot be read (the thing is told, as it always was).</summary>
    ValueTask<bool> DynamicGroupsFollowConnectivityAsync();
}
