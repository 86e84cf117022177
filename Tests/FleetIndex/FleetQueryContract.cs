using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.FleetIndex;
using OrleansIot.Grains.Registry;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.FleetIndex;

/// <summary>
/// AWS's fleet-indexing query language, case by case, against both stores: the same fleet is written to the memory
/// index and to PostgreSQL, and every query must return the same things from each, or a deployment's answers would
/// depend on its storage mode. The fleet mixes registry attributes, shadows (numbers, numeric text, booleans,
/// arrays, objects, a named shadow), connectivity and one unregistered thing that is never returned.
/// </summary>
public abstract class FleetQueryContract
{
    protected abstract Task<IFleetIndexStore> StoreAsync();

    /// <summary>The fleet: registry, shadows and connectivity of eleven things (one unregistered).</summary>
    internal static async Task WriteFleetAsync(IFleetIndexStore store)
    {
        async Task Thing(string name, string? type, long version, string[] groups, (string, string)[] attributes, IndexedShadow? shadow = null,
            (bool Connected, long At, string? Reason)? connectivity = null, (string, IndexedShadow)[]? named = null, bool registered = true)
        {
            if (registered)
            {
                var record = new ThingRecord(name, "id-" + name, type, attributes.ToDictionary(a => a.Item1, a => a.Item2), version);
                await store.WriteAsync(name, IndexPart.Registry, IndexFields.Registry(record, groups));
            }

            if (shadow is not null || named is not null)
            {
                await store.WriteAsync(name, IndexPart.Shadow, IndexFields.Shadows(shadow, named ?? []));
            }

            if (connectivity is { } c)
            {
                await store.WriteAsync(name, IndexPart.Connectivity, IndexFields.Connectivity(c.Connected, c.At, c.Reason));
            }
        }

        static IndexedShadow Shadow(string? reported, string? desired, long version, string? reportedMetadata = null) =>
            new(desired is null ? null : JsonNode.Parse(desired)!.AsObject(), reported is null ? null : JsonNode.Parse(reported)!.AsObject(),
                null, reportedMetadata is null ? null : JsonNode.Parse(reportedMetadata)!.AsObject(), version);

        await Thing("lamp-1", "lamp", 3, ["building-a"], [("floor", "1"), ("color", "Red"), ("model", "LX-100")],
            Shadow("""{"temp":21.5,"on":true,"tags":["a","b"],"location":{"lat":52.5,"lon":13.4},"name":"Kitchen Lamp"}""", """{"on":false}""", 5, """{"temp":{"timestamp":1700000000}}"""),
            (true, 1700000000000, null));
        await Thing("lamp-2", "lamp", 1, ["building-a", "critical"], [("floor", "2"), ("color", "blue"), ("model", "LX-200")],
            Shadow("""{"temp":25,"on":true,"tags":["b","c"]}""", """{"on":true}""", 2),
            (false, 1700000500000, "CONNECTION_LOST"));
        await Thing("lamp-10", "lamp", 1, [], [("floor", "10"), ("color", "red")], Shadow("""{"temp":-3.5,"on":false}""", null, 1));
        await Thing("pump-1", "pump", 1, ["building-b"], [("floor", "1"), ("serial", "SN-0042")],
            Shadow("""{"temp":40,"pressure":2.5,"status":"running fine"}""", """{"pressure":3}""", 7),
            (true, 1700000100000, null),
            [("config", Shadow("""{"mode":"eco"}""", null, 1))]);
        await Thing("pump-2", "pump", 1, [], [("serial", "SN-0043")], connectivity: (false, 1700000200000, "MQTT_KEEP_ALIVE_TIMEOUT"));
        await Thing("sensor_A", null, 1, [], [("floor", "3")], Shadow("""{"temp":30,"humidity":55}""", null, 1));
        await Thing("Sensor-B", null, 1, [], [], Shadow("""{"temp":"28"}""", null, 1));
        await Thing("ghost", null, 1, [], [], Shadow("""{"temp":25,"on":true}""", null, 1), (true, 1700000000000, null), registered: false);
        await Thing("tv-plasma", "tv", 1, [], [("brand", "acme")]);
        await Thing("tv-oled", "tv", 1, [], [("brand", "Acme")]);
        await Thing("gw-1", "gateway", 1, [], [("floor", "2")], Shadow("""{"children":[{"id":"c1","ok":true},{"id":"c2","ok":false}]}""", null, 3));
    }

    private const string Registered = "Sensor-B sensor_A gw-1 lamp-1 lamp-10 lamp-2 pump-1 pump-2 tv-oled tv-plasma";

    /// <summary>Results come in name order by code point (PostgreSQL's "C" collation), whatever order a case lists them in.</summary>
    private static string[] Ordered(string names) => [.. names.Split(' ', StringSplitOptions.RemoveEmptyEntries).Order(StringComparer.Ordinal)];

    /// <summary>Query, then the things it matches in name (byte) order, separated by spaces.</summary>
    public static TheoryData<string, string> Cases => new()
    {
        // registry: names, case, wildcards, escapes
        { "thingName:lamp-1", "lamp-1" },
        { "thingName:LAMP-1", "lamp-1" },
        { "thingName:lamp*", "lamp-1 lamp-10 lamp-2" },
        { "thingName:lamp-?", "lamp-1 lamp-2" },
        { "thingName:lamp-1?", "lamp-10" },
        { "thingName:l?mp-1*", "lamp-1 lamp-10" },
        { "thingName:sensor*", "Sensor-B sensor_A" },
        { "thingName:sensor_?", "sensor_A" },
        { "thingName:sens%r*", "" },
        { "thingName:sensor%", "" },
        { "thingName:sensor\\_a", "sensor_A" },
        { "thingName:ghost", "" },
        { "thingName:(tv* AND -tv-plasma)", "tv-oled" },
        { "thingName:(lamp-1 OR pump-1 OR nothing)", "lamp-1 pump-1" },
        { "thingName:\"lamp-1\"", "lamp-1" },
        { "thingId:id-pump-2", "pump-2" },
        { "thingId:*", Registered },
        { "*", Registered },

        // types, Boolean operators, grouping, default AND, negation
        { "thingTypeName:lamp", "lamp-1 lamp-10 lamp-2" },
        { "thingTypeName:LAMP", "lamp-1 lamp-10 lamp-2" },
        { "thingTypeName:lamp AND attributes.floor:1", "lamp-1" },
        { "thingTypeName:lamp attributes.floor:1", "lamp-1" },
        { "thingTypeName:lamp OR thingTypeName:pump", "lamp-1 lamp-10 lamp-2 pump-1 pump-2" },
        { "thingTypeName:(lamp OR pump)", "lamp-1 lamp-10 lamp-2 pump-1 pump-2" },
        { "NOT thingTypeName:lamp", "Sensor-B sensor_A gw-1 pump-1 pump-2 tv-oled tv-plasma" },
        { "-thingTypeName:lamp", "Sensor-B sensor_A gw-1 pump-1 pump-2 tv-oled tv-plasma" },
        { "NOT NOT thingTypeName:tv", "tv-oled tv-plasma" },
        { "thingTypeName:*", "gw-1 lamp-1 lamp-10 lamp-2 pump-1 pump-2 tv-oled tv-plasma" },
        { "-thingTypeName:*", "Sensor-B sensor_A" },
        { "(thingTypeName:lamp AND attributes.floor:1) OR thingTypeName:tv", "lamp-1 tv-oled tv-plasma" },
        { "thingTypeName:lamp AND NOT (attributes.color:red)", "lamp-2" },
        { "thingTypeName:lamp AND (shadow.reported.temp > 22 OR shadow.reported.on:false)", "lamp-10 lamp-2" },
        { "thingTypeName:pump AND -connectivity.connected:true", "pump-2" },
        { "thingTypeName:lamp OR thingTypeName:tv AND attributes.brand:acme", "lamp-1 lamp-10 lamp-2 tv-oled tv-plasma" },
        { "registry.version:3", "lamp-1" },
        { "registry.version > 1", "lamp-1" },

        // attributes: text, numeric text ranges, string ranges, wildcards, phrases
        { "attributes.color:red", "lamp-1 lamp-10" },
        { "attributes.color:RED", "lamp-1 lamp-10" },
        { "attributes.color:*", "lamp-1 lamp-10 lamp-2" },
        { "attributes.floor:1", "lamp-1 pump-1" },
        { "attributes.floor:[1 TO 2]", "gw-1 lamp-1 lamp-2 pump-1" },
        { "attributes.floor:{1 TO 10]", "gw-1 lamp-10 lamp-2 sensor_A" },
        { "attributes.floor:[2 TO 10}", "gw-1 lamp-2 sensor_A" },
        { "attributes.floor:[3 TO *]", "lamp-10 sensor_A" },
        { "attributes.floor > 2", "lamp-10 sensor_A" },
        { "attributes.floor>=10", "lamp-10" },
        { "attributes.floor<2", "lamp-1 pump-1" },
        { "attributes.floor <= 1", "lamp-1 pump-1" },
        { "attributes.serial:SN-004?", "pump-1 pump-2" },
        { "attributes.serial:\"SN-0042\"", "pump-1" },
        { "attributes.model:lx*", "lamp-1 lamp-2" },
        { "attributes.model:LX-1*", "lamp-1" },
        { "attributes.brand:acme", "tv-oled tv-plasma" },
        { "attributes.brand:[\"a\" TO \"b\"]", "tv-oled tv-plasma" },
        { "attributes.model:[\"lx-100\" TO \"lx-150\"]", "lamp-1" },
        { "attributes.model:{\"lx-100\" TO \"lx-200\"]", "lamp-2" },
        { "attributes.missing:*", "" },
        { "attributes.floor:(1 OR 3)", "lamp-1 pump-1 sensor_A" },

        // groups (arrays match any element)
        { "thingGroupNames:building-a", "lamp-1 lamp-2" },
        { "thingGroupNames:critical", "lamp-2" },
        { "thingGroupNames:building*", "lamp-1 lamp-2 pump-1" },
        { "thingGroupNames:(building-a AND critical)", "lamp-2" },
        { "thingGroupNames:*", "lamp-1 lamp-2 pump-1" },

        // shadows: numbers, numeric text, booleans, arrays, objects, phrases, delta, metadata, named shadows
        { "shadow.reported.temp:21.5", "lamp-1" },
        { "shadow.reported.temp:25", "lamp-2" },
        { "shadow.reported.temp:25.0", "lamp-2" },
        { "shadow.reported.temp:28", "Sensor-B" },
        { "shadow.reported.temp > 24", "Sensor-B lamp-2 pump-1 sensor_A" },
        { "shadow.reported.temp:[20 TO 30]", "Sensor-B lamp-1 lamp-2 sensor_A" },
        { "shadow.reported.temp:{21.5 TO 30}", "Sensor-B lamp-2" },
        { "shadow.reported.temp < 0", "lamp-10" },
        { "shadow.reported.temp:[* TO 0]", "lamp-10" },
        { "shadow.reported.temp:[-5 TO -3]", "lamp-10" },
        { "shadow.reported.temp:*", "Sensor-B lamp-1 lamp-10 lamp-2 pump-1 sensor_A" },
        { "shadow.reported.on:true", "lamp-1 lamp-2" },
        { "shadow.reported.on:TRUE", "lamp-1 lamp-2" },
        { "shadow.reported.on:false", "lamp-10" },
        { "shadow.desired.on:false", "lamp-1" },
        { "shadow.hasDelta:true", "lamp-1 pump-1" },
        { "shadow.hasDelta:false", "Sensor-B gw-1 lamp-10 lamp-2 sensor_A" },
        { "shadow.delta.on:false", "lamp-1" },
        { "shadow.delta.pressure:3", "pump-1" },
        { "shadow.delta.pressure:*", "pump-1" },
        { "shadow.reported.tags:b", "lamp-1 lamp-2" },
        { "shadow.reported.tags:c", "lamp-2" },
        { "shadow.reported.tags:(a AND c)", "" },
        { "shadow.reported.tags:(a OR c)", "lamp-1 lamp-2" },
        { "shadow.reported.location:*", "lamp-1" },
        { "shadow.reported.location.lat > 50", "lamp-1" },
        { "shadow.reported.name:\"kitchen lamp\"", "lamp-1" },
        { "shadow.reported.name:kitchen*", "lamp-1" },
        { "shadow.reported.status:\"running fine\"", "pump-1" },
        { "shadow.reported.status:running", "" },
        { "shadow.reported.children.id:c2", "gw-1" },
        { "shadow.reported.children.ok:false", "gw-1" },
        { "shadow.name.config.reported.mode:eco", "pump-1" },
        { "shadow.name.config.hasDelta:false", "pump-1" },
        { "shadow.name.config.reported.mode:*", "pump-1" },
        { "shadow.version:5", "lamp-1" },
        { "shadow.version >= 3", "gw-1 lamp-1 pump-1" },
        { "shadow.metadata.reported.temp.timestamp > 1600000000", "lamp-1" },
        { "shadow.reported.humidity:[50 TO 60] AND shadow.reported.temp:30", "sensor_A" },

        // connectivity
        { "connectivity.connected:true", "lamp-1 pump-1" },
        { "connectivity.connected:false", "lamp-2 pump-2" },
        { "-connectivity.connected:true", "Sensor-B sensor_A gw-1 lamp-10 lamp-2 pump-2 tv-oled tv-plasma" },
        { "connectivity.connected:*", "lamp-1 lamp-2 pump-1 pump-2" },
        { "connectivity.disconnectReason:CONNECTION_LOST", "lamp-2" },
        { "connectivity.disconnectReason:connection_lost", "lamp-2" },
        { "connectivity.disconnectReason:MQTT*", "pump-2" },
        { "connectivity.timestamp > 1700000150000", "lamp-2 pump-2" },
        { "connectivity.timestamp:[1700000000000 TO 1700000100000]", "lamp-1 pump-1" },

        // unqualified terms search registry and shadow values
        { "red", "lamp-1 lamp-10" },
        { "kitchen*", "lamp-1" },
        { "eco", "pump-1" },
        { "running", "" },
        { "acme AND thingName:tv-oled", "tv-oled" },

        // text that would break a statement if it were spliced into one
        { "thingName:\"x' OR '1'='1\"", "" },
        { "thingName:\"\\\"}]\"", "" },
        { "attributes.a'b:1", "" },
        { "attributes.x\\\"\\]\\}:1", "" },
        { "thingName:x\\'\\;DROP", "" },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Query_MatchesWhatAwsFleetIndexingWould(string query, string expected)
    {
        var store = await StoreAsync();
        var page = await store.SearchAsync(FleetQuery.Parse(query, new FleetQueryLimits(MaxTerms: 10)), null, 500);
        Assert.Equal(Ordered(expected), page.Things.Select(t => t.ThingName));
    }

    public static TheoryData<string, string> Refused => new()
    {
        { "", "empty" },
        { "thingName:", "no value" },
        { "(thingName:a", "Expected ')'" },
        { "thingName:a)", "Unbalanced ')'" },
        { "thingName:*lamp", "cannot start with a wildcard" },
        { "thingName:l*a*m*p", "at most 2 '*'" },
        { "thingName:l??????", "at most 2 '*' and 5 '?'" },
        { "attributes.floor:[1 TO", "ends where a term was expected" },
        { "attributes.floor:[1 2]", "Expected TO" },
        { "attributes.floor:[1 TO 2", "Expected ']' or '}'" },
        { "a:1 b:2 c:3 d:4 e:5 f:6 g:7 h:8", "more than 7 terms" },
        { "thingName:\"unterminated", "Unterminated phrase at position 11" },
        { "[1 TO 2]", "A range needs a field" },
        { "thingName:lamp\\", "escapes nothing" },
        { "thingName:x');DROP TABLE iot_fleet_index;--", "Unbalanced ')' at position 13" },
        { "thingName:(a OR", "ends where a term was expected" },
        { "attributes.floor:[1* TO 2]", "Wildcards are not allowed in a range" },
        { "thingName:a AND", "ends where a term was expected" },
    };

    [Theory]
    [Trait("Category", "Unit")]
    [MemberData(nameof(Refused))]
    public void BadQuery_IsRefusedWithInvalidQueryException_AndWhere(string query, string message)
    {
        var e = Assert.Throws<ApiException>(() => FleetQuery.Parse(query));
        Assert.Equal("InvalidQueryException", e.Code);
        Assert.Equal(400, e.Status);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    [Trait("Category", "Unit")]
    public void OverlongQuery_IsRefused()
    {
        var e = Assert.Throws<ApiException>(() => FleetQuery.Parse("thingName:" + new string('a', 1000)));
        Assert.Contains("longer than 1000 bytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Search_PagesInNameOrder_WithoutRepeatsOrGaps()
    {
        var store = await StoreAsync();
        var query = FleetQuery.Parse("*");
        var names = new List<string>();
        string? after = null;
        int pages = 0;
        do
        {
            var page = await store.SearchAsync(query, after, 3);
            names.AddRange(page.Things.Select(t => t.ThingName));
            after = page.NextToken is null ? null : Grains.Registry.RegistryPaging.After(page.NextToken);
            pages++;
        }
        while (after is not null);

        Assert.Equal(Ordered(Registered), names);
        Assert.Equal(4, pages);
    }

    [Fact]
    public async Task Search_ReturnsTheDocumentsOfEachPart()
    {
        var store = await StoreAsync();
        var thing = Assert.Single((await store.SearchAsync(FleetQuery.Parse("thingName:lamp-2"), null, 10)).Things);

        var registry = JsonNode.Parse(thing.Registry)!;
        Assert.Equal("LX-200", (string?)registry["attributes"]!["model"]);   // the values as given, not lower case
        Assert.Equal(["building-a", "critical"], registry["thingGroupNames"]!.AsArray().Select(g => (string?)g));
        var shadow = JsonNode.Parse(thing.Shadow!)!;
        Assert.Equal(25, (double)shadow["reported"]!["temp"]!);
        Assert.False((bool)shadow["hasDelta"]!);
        Assert.Equal(2, (long)shadow["version"]!);
        var connectivity = JsonNode.Parse(thing.Connectivity!)!;
        Assert.False((bool)connectivity["connected"]!);
        Assert.Equal("CONNECTION_LOST", (string?)connectivity["disconnectReason"]);
    }

    [Fact]
    public async Task Statistics_OverNumbersAndNumericText_AndCountsTextOnly()
    {
        var store = await StoreAsync();

        // temps: 21.5, 25, -3.5, 40, 30, "28" (numeric text counts as a number)
        var temp = await store.StatisticsAsync(FleetQuery.Parse("*"), "shadow.reported.temp");
        double[] values = [21.5, 25, -3.5, 40, 30, 28];
        var mean = values.Average();
        Assert.Equal(6, temp.Count);
        Assert.Equal(values.Sum(), temp.Sum!.Value, 6);
        Assert.Equal(mean, temp.Average!.Value, 6);
        Assert.Equal(-3.5, temp.Minimum);
        Assert.Equal(40, temp.Maximum);
        Assert.Equal(values.Sum(v => v * v), temp.SumOfSquares!.Value, 6);
        Assert.Equal(values.Sum(v => (v - mean) * (v - mean)) / values.Length, temp.Variance!.Value, 6);
        Assert.Equal(Math.Sqrt(temp.Variance.Value), temp.StdDeviation!.Value, 6);

        var lamps = await store.StatisticsAsync(FleetQuery.Parse("thingTypeName:lamp"), "shadow.reported.temp");
        Assert.Equal(3, lamps.Count);
        Assert.Equal(43.0 / 3, lamps.Average!.Value, 6);

        var on = await store.StatisticsAsync(FleetQuery.Parse("*"), "shadow.reported.on");   // booleans: the share that is true
        Assert.Equal(2.0 / 3, on.Average!.Value, 6);

        var colors = await store.StatisticsAsync(FleetQuery.Parse("*"), "attributes.color");   // text: a count only
        Assert.Equal(3, colors.Count);
        Assert.Null(colors.Average);

        // Conditions with ranges and wildcards around an aggregation (their elements must not mix with the aggregated ones).
        var warm = await store.StatisticsAsync(FleetQuery.Parse("shadow.reported.temp:[20 TO 30] AND thingName:s*"), "thingName");
        Assert.Equal(2, warm.Count);   // Sensor-B, sensor_A
        var lampTemps = await store.StatisticsAsync(FleetQuery.Parse("attributes.floor:[1 TO 2] AND thingName:lamp*"), "shadow.reported.temp");
        Assert.Equal(46.5, lampTemps.Sum);   // lamp-1 and lamp-2

        var none = await store.StatisticsAsync(FleetQuery.Parse("thingName:nothing"), "shadow.reported.temp");
        Assert.Equal(0, none.Count);
    }

    [Fact]
    public async Task Cardinality_Percentiles_AndBuckets_AgreeBetweenStores()
    {
        var store = await StoreAsync();

        Assert.Equal(2, await store.CardinalityAsync(FleetQuery.Parse("*"), "attributes.color"));   // red, blue (case folded)
        Assert.Equal(4, await store.CardinalityAsync(FleetQuery.Parse("*"), "thingTypeName"));   // lamp, pump, tv, gateway

        var percentiles = await store.PercentilesAsync(FleetQuery.Parse("*"), "shadow.reported.temp", [0, 50, 90, 100]);
        Assert.Equal([-3.5, 26.5, 35, 40], percentiles.Select(p => Math.Round(p.Value, 6)));   // sorted: -3.5 21.5 25 28 30 40
        Assert.Empty(await store.PercentilesAsync(FleetQuery.Parse("thingName:nothing"), "shadow.reported.temp", [50]));

        var buckets = await store.BucketsAsync(FleetQuery.Parse("*"), "thingTypeName", 3);
        Assert.Equal([("lamp", 3L), ("pump", 2L), ("tv", 2L)], buckets.Select(b => (b.KeyValue, b.Count)));
    }

    [Fact]
    public async Task ClearingAPart_AndRemovingAThing_TakeThemOutOfResults()
    {
        var store = await FreshStoreAsync();
        var record = new ThingRecord("solo", "id", null, new Dictionary<string, string> { ["k"] = "v" }, 1);
        await store.WriteAsync("solo", IndexPart.Registry, IndexFields.Registry(record, []));
        await store.WriteAsync("solo", IndexPart.Connectivity, IndexFields.Connectivity(true, 1, null));
        Assert.Single((await store.SearchAsync(FleetQuery.Parse("connectivity.connected:true"), null, 10)).Things);

        await store.WriteAsync("solo", IndexPart.Connectivity, null);
        Assert.Empty((await store.SearchAsync(FleetQuery.Parse("connectivity.connected:true"), null, 10)).Things);
        Assert.Single((await store.SearchAsync(FleetQuery.Parse("attributes.k:v"), null, 10)).Things);
        Assert.Equal(["solo"], (await store.NamesAsync(null, 10)).Items);

        await store.RemoveAsync("solo");
        Assert.Empty((await store.SearchAsync(FleetQuery.Parse("*"), null, 10)).Things);
        Assert.Empty((await store.NamesAsync(null, 10)).Items);
    }

    [Fact]
    public async Task ConnectivityBatches_WriteRegisteredThingsOnly()
    {
        var store = await FreshStoreAsync();
        var record = new ThingRecord("known", "id", null, new Dictionary<string, string>(), 1);
        await store.WriteAsync("known", IndexPart.Registry, IndexFields.Registry(record, []));
        await store.WriteAsync("shadowed", IndexPart.Shadow, new IndexSection("""{"reported":{"on":true}}""", """{"shadow.reported.on":[true]}"""));   // a shadow, not registered

        await store.WriteConnectivityAsync([
            new ConnectivityIndexWrite("known", IndexFields.Connectivity(true, 1_000, null)),
            new ConnectivityIndexWrite("shadowed", IndexFields.Connectivity(true, 1_000, null)),
            new ConnectivityIndexWrite("stranger", IndexFields.Connectivity(true, 1_000, null)),
        ]);

        Assert.Equal(["known"], (await store.SearchAsync(FleetQuery.Parse("connectivity.connected:true"), null, 10)).Things.Select(t => t.ThingName));
        Assert.Equal(["known"], (await store.SearchAsync(FleetQuery.Parse("*"), null, 10)).Things.Select(t => t.ThingName));
        Assert.DoesNotContain("stranger", (await store.NamesAsync(null, 10)).Items);

        await store.WriteConnectivityAsync([new ConnectivityIndexWrite("known", IndexFields.Connectivity(false, 2_000, "CONNECTION_LOST"))]);
        var entry = Assert.Single((await store.SearchAsync(FleetQuery.Parse("connectivity.disconnectReason:CONNECTION_LOST"), null, 10)).Things);
        Assert.Contains("2000", entry.Connectivity, StringComparison.Ordinal);
    }

    /// <summary>An empty store of this kind, for tests that change what is in it.</summary>
    protected abstract Task<IFleetIndexStore> FreshStoreAsync();
}

/// <summary><see cref="MemoryFleetIndex"/> as a store, without a grain around it.</summary>
internal sealed class MemoryFleetIndexStore : IFleetIndexStore
{
    private readonly MemoryFleetIndex _index = new();

    public Task WriteAsync(string thingName, IReadOnlyList<IndexPartWrite> parts)
    {
        foreach (var write in parts)
        {
            _index.Write(thingName, write.Part, write.Section);
        }

        return Task.CompletedTask;
    }

    public Task WriteConnectivityAsync(IReadOnlyList<ConnectivityIndexWrite> writes)
    {
        foreach (var write in writes)
        {
            _index.WriteIfRegistered(write.ThingName, IndexPart.Connectivity, write.Section);
        }

        return Task.CompletedTask;
    }

    public Task RemoveAsync(string thingName)
    {
        _index.Remove(thingName);
        return Task.CompletedTask;
    }

    public Task<IndexSearchPage> SearchAsync(FleetQuery query, string? afterThingName, int maxResults) => Task.FromResult(_index.Search(query, afterThingName, maxResults));

    public Task<FleetStatistics> StatisticsAsync(FleetQuery query, string field) => Task.FromResult(_index.Statistics(query, field));

    public Task<long> CardinalityAsync(FleetQuery query, string field) => Task.FromResult(_index.Cardinality(query, field));

    public Task<IReadOnlyList<FleetPercentile>> PercentilesAsync(FleetQuery query, string field, IReadOnlyList<double> percents) => Task.FromResult(_index.Percentiles(query, field, percents));

    public Task<IReadOnlyList<FleetBucket>> BucketsAsync(FleetQuery query, string field, int maxBuckets) => Task.FromResult(_index.Buckets(query, field, maxBuckets));

    public Task<RegistryPage<string>> NamesAsync(string? afterThingName, int maxResults) => Task.FromResult(_index.Names(afterThingName, maxResults));
}

[Trait("Category", "Unit")]
public sealed class MemoryFleetQueryTests : FleetQueryContract
{
    private static readonly Lazy<Task<IFleetIndexStore>> Fleet = new(async () =>
    {
        var store = new MemoryFleetIndexStore();
        await WriteFleetAsync(store);
        return store;
    });

    protected override Task<IFleetIndexStore> StoreAsync() => Fleet.Value;

    protected override Task<IFleetIndexStore> FreshStoreAsync() => Task.FromResult<IFleetIndexStore>(new MemoryFleetIndexStore());
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresFleetQueryTests(PostgresServer postgres) : FleetQueryContract
{
    private static Task<IFleetIndexStore>? _fleet;
    private static readonly Lock Gate = new();

    protected override Task<IFleetIndexStore> StoreAsync()
    {
        lock (Gate)
        {
            return _fleet ??= LoadAsync();
        }
    }

    private async Task<IFleetIndexStore> LoadAsync()
    {
        var store = await FreshStoreAsync();
        await WriteFleetAsync(store);
        return store;
    }

    protected override async Task<IFleetIndexStore> FreshStoreAsync() => new PostgresFleetIndexStore(await postgres.CreateMigratedDataSourceAsync("fleet"));
}
