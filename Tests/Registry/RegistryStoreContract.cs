using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Registry;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Registry;

/// <summary>
/// What every registry store must do, run against both: the embedded <see cref="RegistryIndex"/> and the PostgreSQL
/// store. Conditional writes, AWS's list filters, paging and hierarchy queries must agree, or a deployment's
/// behaviour would depend on its storage mode.
/// </summary>
public abstract class RegistryStoreContract
{
    protected abstract Task<IRegistryStore> StoreAsync();

    private static ThingRecord Thing(string name, string? type = null, long version = 1, params (string, string)[] attributes) =>
        new(name, Guid.NewGuid().ToString(), type, attributes.ToDictionary(a => a.Item1, a => a.Item2), version);

    private static ThingGroupRecord Group(string name, params string[] ancestors) =>
        new(name, Guid.NewGuid().ToString(), ancestors, null, new Dictionary<string, string>(), 1, DateTimeOffset.UtcNow);

    [Fact]
    public async Task ThingWrites_AreConditionalOnTheVersionTheyReplace()
    {
        var store = await StoreAsync();

        Assert.True(await store.SaveThingAsync(Thing("t"), 0));
        Assert.False(await store.SaveThingAsync(Thing("t"), 0));                 // exists already
        Assert.False(await store.SaveThingAsync(Thing("t", version: 3), 2));     // stale
        Assert.True(await store.SaveThingAsync(Thing("t", "sensor", 2, ("a", "1")), 1));

        var stored = await store.GetThingAsync("t");
        Assert.Equal(2, stored!.Version);
        Assert.Equal("sensor", stored.ThingTypeName);
        Assert.Equal("1", stored.Attributes["a"]);
        Assert.Null(await store.GetThingAsync("missing"));
    }

    [Fact]
    public async Task ListThings_FiltersByTypeAndAttribute_AndPagesInNameOrder()
    {
        var store = await StoreAsync();
        await store.SaveThingAsync(Thing("b-2", "lamp", 1, ("floor", "2")), 0);
        await store.SaveThingAsync(Thing("a-1", "lamp", 1, ("floor", "1")), 0);
        await store.SaveThingAsync(Thing("c-3", "pump", 1, ("floor", "10")), 0);
        await store.SaveThingAsync(Thing("B-4", null, 1, ("room", "x")), 0);

        var all = await store.ListThingsAsync(new ThingQuery(null, null, false, null, null, 250));
        var lamps = await store.ListThingsAsync(new ThingQuery(null, null, false, "lamp", null, 250));
        var floor1 = await store.ListThingsAsync(new ThingQuery("floor", "1", false, null, null, 250));
        var floor1Prefix = await store.ListThingsAsync(new ThingQuery("floor", "1", true, null, null, 250));
        var withFloor = await store.ListThingsAsync(new ThingQuery("floor", null, false, null, null, 250));
        var page1 = await store.ListThingsAsync(new ThingQuery(null, null, false, null, null, 3));
        var page2 = await store.ListThingsAsync(new ThingQuery(null, null, false, null, page1.NextToken, 3));

        Assert.Equal(["B-4", "a-1", "b-2", "c-3"], all.Items.Select(t => t.ThingName));   // byte order
        Assert.Null(all.NextToken);
        Assert.Equal(["a-1", "b-2"], lamps.Items.Select(t => t.ThingName));
        Assert.Equal(["a-1"], floor1.Items.Select(t => t.ThingName));
        Assert.Equal(["a-1", "c-3"], floor1Prefix.Items.Select(t => t.ThingName));
        Assert.Equal(["a-1", "b-2", "c-3"], withFloor.Items.Select(t => t.ThingName));
        Assert.Equal(["B-4", "a-1", "b-2"], page1.Items.Select(t => t.ThingName));
        Assert.Equal(["c-3"], page2.Items.Select(t => t.ThingName));
        Assert.Null(page2.NextToken);
        Assert.Equal(2, await store.CountThingsOfTypeAsync("lamp"));
    }

    [Fact]
    public async Task Groups_Hierarchy_Members_AndDeletes()
    {
        var store = await StoreAsync();
        Assert.True(await store.SaveThingGroupAsync(Group("root"), 0));
        Assert.True(await store.SaveThingGroupAsync(Group("mid", "root"), 0));
        Assert.True(await store.SaveThingGroupAsync(Group("leaf", "root", "mid"), 0));
        Assert.True(await store.SaveThingGroupAsync(Group("other"), 0));
        Assert.False(await store.SaveThingGroupAsync(Group("other"), 0));
        foreach (var thing in new[] { "t1", "t2", "t3" })
        {
            await store.SaveThingAsync(Thing(thing), 0);
        }

        Assert.True(await store.AddMemberAsync("root", "t1"));
        Assert.True(await store.AddMemberAsync("leaf", "t2"));
        Assert.True(await store.AddMemberAsync("leaf", "t2"));   // idempotent
        Assert.True(await store.AddMemberAsync("other", "t2"));
        Assert.True(await store.AddMemberAsync("mid", "t3"));
        Assert.False(await store.AddMemberAsync("nope", "t3"));

        Assert.Equal(["mid"], (await store.ListThingGroupsAsync("root", null, false, null, 250)).Items.Select(g => g.ThingGroupName));
        Assert.Equal(["leaf", "mid"], (await store.ListThingGroupsAsync("root", null, true, null, 250)).Items.Select(g => g.ThingGroupName));
        Assert.Equal(["mid"], (await store.ListThingGroupsAsync(null, "mi", false, null, 250)).Items.Select(g => g.ThingGroupName));
        Assert.Equal(1, await store.CountChildGroupsAsync("root"));
        Assert.Equal(["t1"], (await store.ListMembersAsync("root", false, null, 250)).Items);
        Assert.Equal(["t1", "t2", "t3"], (await store.ListMembersAsync("root", true, null, 250)).Items);
        var page = await store.ListMembersAsync("root", true, null, 2);
        Assert.Equal(["t1", "t2"], page.Items);
        Assert.Equal(["t3"], (await store.ListMembersAsync("root", true, page.NextToken, 2)).Items);
        Assert.Equal(["leaf", "other"], await store.GroupsOfAsync("t2"));

        await store.DeleteThingAsync("t2");
        await store.DeleteThingGroupAsync("mid");
        Assert.Empty(await store.GroupsOfAsync("t2"));
        Assert.Empty((await store.ListMembersAsync("mid", false, null, 250)).Items);
        Assert.Equal(["t1"], (await store.ListMembersAsync("root", true, null, 250)).Items);
    }

    [Fact]
    public async Task ThingTypes_CreateOnce_Deprecate_List_Delete()
    {
        var store = await StoreAsync();
        var type = new ThingTypeRecord("lamp", "id-1", "a lamp", ["floor", "room"], false, null, DateTimeOffset.UtcNow);

        Assert.True(await store.SaveThingTypeAsync(type, create: true));
        Assert.False(await store.SaveThingTypeAsync(type with { Description = "other" }, create: true));
        var at = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);
        Assert.True(await store.SaveThingTypeAsync(type with { Deprecated = true, DeprecationDate = at }, create: false));
        await store.SaveThingTypeAsync(type with { ThingTypeName = "pump", ThingTypeId = "id-2" }, create: true);

        var stored = await store.GetThingTypeAsync("lamp");
        Assert.True(stored!.Deprecated);
        Assert.Equal(at, stored.DeprecationDate);
        Assert.Equal("a lamp", stored.Description);
        Assert.Equal(["floor", "room"], stored.SearchableAttributes);
        Assert.Equal(["lamp", "pump"], (await store.ListThingTypesAsync(null, null, 250)).Items.Select(t => t.ThingTypeName));
        Assert.Equal(["pump"], (await store.ListThingTypesAsync("pump", null, 250)).Items.Select(t => t.ThingTypeName));
        await store.DeleteThingTypeAsync("lamp");
        Assert.Null(await store.GetThingTypeAsync("lamp"));
    }

    [Fact]
    public async Task ABadPageToken_IsRefused()
    {
        var store = await StoreAsync();

        var error = await Assert.ThrowsAsync<ApiException>(() => store.ListThingsAsync(new ThingQuery(null, null, false, null, "%%%", 10)));

        Assert.Equal("InvalidRequestException", error.Code);
    }
}

[Trait("Category", "Unit")]
public sealed class RegistryIndexTests : RegistryStoreContract
{
    protected override Task<IRegistryStore> StoreAsync() => Task.FromResult<IRegistryStore>(new RegistryIndex());
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresRegistryStoreTests(PostgresServer postgres) : RegistryStoreContract
{
    protected override async Task<IRegistryStore> StoreAsync()
    {
        // A database per test: the contract's names repeat.
        return new PostgresRegistryStore(await postgres.CreateMigratedDataSourceAsync("registry"));
    }
}
