using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Npgsql;
using OrleansIot.Grains.Shadows;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Shadows;

/// <summary>PostgreSQL mode: what an accepted shadow update promises survives a node's death, and the store never lets a version go backwards.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ShadowDurabilityTests(PostgresServer postgres)
{
    private static StoredShadow Row(string thing, long revision, string? document = "{\"state\":{},\"metadata\":{},\"timestamp\":1}", string name = "") =>
        new(thing, name, revision, revision, document, null, null);

    private Task<NpgsqlDataSource> MigratedAsync() => postgres.CreateMigratedDataSourceAsync("shadows");

    [Fact]
    public async Task Store_WritesOnlyOverTheRevisionItReplaces()
    {
        await using var dataSource = await MigratedAsync();
        await using var store = new PostgresShadowStore(dataSource);

        Assert.True(await store.SaveAsync(Row("t", 1), default));
        Assert.False(await store.SaveAsync(Row("t", 1), default));          // a second activation's first write
        Assert.False(await store.SaveAsync(Row("t", 3), default));          // skips a revision
        Assert.False(await store.SaveAsync(Row("new", 2), default));        // no row yet: only revision 1 creates it
        Assert.True(await store.SaveAsync(Row("t", 2, document: null), default));

        var rows = await store.LoadAsync("t", default);
        var row = Assert.Single(rows);
        Assert.Equal(2, row.Revision);
        Assert.Null(row.Document);
        Assert.Empty(await store.LoadAsync("new", default));
    }

    [Fact]
    public async Task Store_GroupCommitsConcurrentWrites_AndARefusedRowDoesNotFailTheOthers()
    {
        await using var dataSource = await MigratedAsync();
        await using var store = new PostgresShadowStore(dataSource);
        Assert.True(await store.SaveAsync(Row("stale", 1), default));

        var writes = Enumerable.Range(0, 300).Select(i => store.SaveAsync(Row($"t{i}", 1, name: $"s{i % 3}"), default)).ToList();
        var stale = store.SaveAsync(Row("stale", 1), default);
        var results = await Task.WhenAll(writes);

        Assert.All(results, Assert.True);
        Assert.False(await stale);
        await using var count = dataSource.CreateCommand("SELECT count(*) FROM iot_shadows");
        Assert.Equal(301L, (long)(await count.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task KillDashNine_AcceptedUpdatesSurvive_VersionsContinue_AndRetriesStayOnce()
    {
        var settings = new Dictionary<string, string>
        {
            ["Iot__Storage"] = "Postgres",
            ["ConnectionStrings__Iot"] = await postgres.CreateDatabaseAsync(),
            ["Orleans__ClusterId"] = "shadow-" + Guid.NewGuid().ToString("N")[..8],
            ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
            ["Orleans__Membership__NumMissedProbesLimit"] = "2",
            ["Orleans__Membership__NumVotesForDeathDeclaration"] = "1",
        };
        await using var survivor = SiloProcess.Start(settings);
        await survivor.WaitUntilReadyAsync();
        await using var doomed = SiloProcess.Start(settings);
        await doomed.WaitUntilReadyAsync();

        // Ten things, so that some grains live on the node that dies; each gets three updates through that node.
        var things = Enumerable.Range(0, 10).Select(i => Ids.NewId($"dur{i}")).ToList();
        foreach (var thing in things)
        {
            for (var v = 1; v <= 3; v++)
            {
                var response = await doomed.Http.PostAsync($"/things/{thing}/shadow", Body($"{{\"state\":{{\"reported\":{{\"v\":{v}}}}},\"clientToken\":\"{thing}-{v}\"}}"));
                Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            }
        }

        doomed.Kill();

        foreach (var thing in things)
        {
            // Every accepted update is there; reads may fail while the dead node's grains are not yet declared dead.
            var doc = await Eventually.Get(
                async () => await survivor.Http.GetAsync($"/things/{thing}/shadow") is { IsSuccessStatusCode: true } r ? JsonNode.Parse(await r.Content.ReadAsStringAsync()) : null,
                d => d is not null, $"{thing} readable on the survivor", TimeSpan.FromSeconds(90));
            Assert.Equal(3, (long)doc!["version"]!);
            Assert.Equal(3, (int)doc["state"]!["reported"]!["v"]!);

            // The device retries its last update (it never saw the answer): same outcome, no new version.
            var retry = JsonNode.Parse(await (await survivor.Http.PostAsync($"/things/{thing}/shadow", Body($"{{\"state\":{{\"reported\":{{\"v\":3}}}},\"clientToken\":\"{thing}-3\"}}"))).Content.ReadAsStringAsync())!;
            Assert.Equal(3, (long)retry["version"]!);
            var next = JsonNode.Parse(await (await survivor.Http.PostAsync($"/things/{thing}/shadow", Body("{\"state\":{\"reported\":{\"v\":4}}}"))).Content.ReadAsStringAsync())!;
            Assert.Equal(4, (long)next["version"]!);
        }
    }

    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");
}
