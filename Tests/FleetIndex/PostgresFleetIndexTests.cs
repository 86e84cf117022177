using System.Text.Json.Nodes;
using Npgsql;
using OrleansIot.Grains.Abstractions.Shadows;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.FleetIndex;

/// <summary>
/// The fleet index end to end in PostgreSQL mode over 10,000 things with mixed shadows: searches and statistics
/// count what was written, the index outlives a node restart, and after the index is lost one rebuild command makes
/// it again from the registry, the shadows and connectivity.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresFleetIndexTests(PostgresServer postgres)
{
    private const int Things = 10_000;

    private sealed class PostgresNode(string connectionString) : NodeFixture
    {
        protected override IEnumerable<string> Settings => ["Iot:Storage=Postgres", $"ConnectionStrings:Iot={connectionString}"];
    }

    [Fact]
    public async Task TenThousandThings_AreFound_AfterARestart_AndAfterTheIndexIsLostAndRebuilt()
    {
        var connectionString = await postgres.CreateDatabaseAsync("fleet");
        var first = new PostgresNode(connectionString);
        await first.InitializeAsync();
        try
        {
            using var gate = new SemaphoreSlim(16);   // a steady load: the suite runs other tests beside this one
            await Task.WhenAll(Enumerable.Range(0, Things).Select(async i =>
            {
                await gate.WaitAsync();
                try
                {
                    var thing = first.Cluster.GetGrain<IThingGrain>(Name(i));
                    await thing.CreateThing(null, new Dictionary<string, string> { ["rack"] = (i % 100).ToString(System.Globalization.CultureInfo.InvariantCulture) });
                    if (Shadow(i) is { } state)
                    {
                        var answer = await thing.UpdateShadow(new ShadowRequest(null, System.Text.Encoding.UTF8.GetBytes(state), ShadowChannel.Api));
                        Assert.Equal(200, answer.Code);
                    }
                }
                finally
                {
                    gate.Release();
                }
            }));

            await AssertFleetAsync(first.Http);
        }
        finally
        {
            await first.DisposeAsync();
        }

        var second = new PostgresNode(connectionString);
        await second.InitializeAsync();
        try
        {
            await AssertFleetAsync(second.Http);   // the index is stored, not rebuilt at start

            await using (var dataSource = NpgsqlDataSource.Create(connectionString))
            {
                await using var truncate = dataSource.CreateCommand("TRUNCATE iot_fleet_index, iot_fleet_index_shadow, iot_fleet_index_connectivity");
                await truncate.ExecuteNonQueryAsync();
            }

            Assert.Empty(FleetIndexApiTests.Names(await FleetIndexApiTests.SearchAsync(second.Http, "*")));
            var rebuilt = await ApiAssert.OkAsync(await second.Http.PostAsync("/api/indices/AWS_Things/rebuild?wait=true", null));
            Assert.Equal(Things, (long)rebuilt["thingsIndexed"]!);
            await AssertFleetAsync(second.Http);
        }
        finally
        {
            await second.DisposeAsync();
        }
    }

    /// <summary>
    /// Shadow sections are written behind (every 2 s per node): a node that dies loses what it held. Simulated by
    /// a shadow newer than its entry in the database (a node that stored the update and died before its round), the
    /// cluster then restarting: the repair finds the thing and reindexes it, with nothing else asked of anyone.
    /// </summary>
    [Fact]
    public async Task AShadowSectionANodeHeldWhenItDied_IsRepaired()
    {
        var connectionString = await postgres.CreateDatabaseAsync("fleetrepair");
        var first = new PostgresNode(connectionString);
        await first.InitializeAsync();
        try
        {
            var thing = first.Cluster.GetGrain<IThingGrain>("repair-1");
            await thing.CreateThing(null, null);
            var answer = await thing.UpdateShadow(new ShadowRequest(null, """{"state":{"reported":{"temp":1}}}"""u8.ToArray(), ShadowChannel.Api));
            Assert.Equal(200, answer.Code);
            Assert.Equal(["repair-1"], FleetIndexApiTests.Names(await FleetIndexApiTests.SearchAsync(first.Http, "shadow.reported.temp:1")));
        }
        finally
        {
            await first.DisposeAsync();
        }

        await using (var dataSource = NpgsqlDataSource.Create(connectionString))
        {
            await using var lost = dataSource.CreateCommand("""
                UPDATE iot_shadows SET document = jsonb_set(document, '{state,reported,temp}', '2'), version = version + 1,
                       revision = revision + 1, updated_at = now() WHERE thing_name = 'repair-1' AND shadow_name = ''
                """);
            Assert.Equal(1, await lost.ExecuteNonQueryAsync());
        }

        var second = new PostgresNode(connectionString);
        await second.InitializeAsync();
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (FleetIndexApiTests.Names(await FleetIndexApiTests.SearchAsync(second.Http, "shadow.reported.temp:2")).Length == 0)
            {
                Assert.True(DateTime.UtcNow < deadline, "the repair did not reindex the thing within 60 s");
                await Task.Delay(250);
            }

            Assert.Empty(FleetIndexApiTests.Names(await FleetIndexApiTests.SearchAsync(second.Http, "shadow.reported.temp:1")));
        }
        finally
        {
            await second.DisposeAsync();
        }
    }

    private static string Name(int i) => $"fleet-{i:D5}";

    /// <summary>A third of the things report a temperature, a third a switch with a desired state that differs every other time, a third nothing.</summary>
    private static string? Shadow(int i) => (i % 3) switch
    {
        0 => new JsonObject { ["state"] = new JsonObject { ["reported"] = new JsonObject { ["temp"] = i % 50, ["fw"] = $"1.{i % 4}" } } }.ToJsonString(),
        1 => new JsonObject { ["state"] = new JsonObject { ["reported"] = new JsonObject { ["on"] = i % 2 == 0 }, ["desired"] = new JsonObject { ["on"] = true } } }.ToJsonString(),
        _ => null,
    };

    private static async Task AssertFleetAsync(HttpClient http)
    {
        var all = Enumerable.Range(0, Things).ToList();
        Assert.Equal(all.Count(i => i % 3 == 0 && i % 50 >= 10 && i % 50 <= 19), await CountAsync(http, "shadow.reported.temp:[10 TO 19]"));
        Assert.Equal(all.Count(i => i % 3 == 1 && i % 2 == 1), await CountAsync(http, "shadow.hasDelta:true"));
        Assert.Equal(all.Count(i => i % 3 == 0 && i % 4 == 2 && i % 100 == 42), await CountAsync(http, "shadow.reported.fw:\"1.2\" AND attributes.rack:42"));
        Assert.Equal(all.Count(i => i % 3 == 2), await CountAsync(http, "thingName:fleet-* AND -shadow.reported:*"));
        Assert.Equal(Things, await CountAsync(http, "thingName:fleet-*"));

        // A selective search returns the documents; paging walks the whole rack.
        var rack = new List<string>();
        string? token = null;
        do
        {
            var page = await FleetIndexApiTests.SearchAsync(http, "attributes.rack:7", maxResults: 40, nextToken: token);
            rack.AddRange(FleetIndexApiTests.Names(page));
            token = (string?)page["nextToken"];
        }
        while (token is not null);

        Assert.Equal(all.Where(i => i % 100 == 7).Select(Name), rack);

        var temps = (await ApiAssert.OkAsync(await http.PostAsync("/api/indices/statistics", FleetIndexApiTests.Json(new JsonObject
        {
            ["queryString"] = "thingName:fleet-*",
            ["aggregationField"] = "shadow.reported.temp",
        }))))["statistics"]!;
        var expected = all.Where(i => i % 3 == 0).Select(i => (double)(i % 50)).ToList();
        Assert.Equal(expected.Count, (long)temps["count"]!);
        Assert.Equal(expected.Average(), (double)temps["average"]!, 6);
    }

    private static async Task<long> CountAsync(HttpClient http, string query) =>
        (long)(await ApiAssert.OkAsync(await http.PostAsync("/api/indices/statistics", FleetIndexApiTests.Json(new JsonObject
        {
            ["queryString"] = query,
            ["aggregationField"] = "thingName",
        }))))["statistics"]!["count"]!;
}
