using OrleansIot.Grains.Abstractions;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Registry;

/// <summary>The registry's rules in the grains, on the two-silo TestingHost cluster (what a backend service gets through an Orleans client).</summary>
[Collection(ClusterCollection.Name)]
public sealed class RegistryGrainTests(ClusterFixture fixture)
{
    private IThingGrain Thing(string name) => fixture.Grains.GetGrain<IThingGrain>(name);

    private IThingTypeGrain Type(string name) => fixture.Grains.GetGrain<IThingTypeGrain>(name);

    private IThingGroupGrain Group(string name) => fixture.Grains.GetGrain<IThingGroupGrain>(name);

    private static Dictionary<string, string> Attributes(int count) => Enumerable.Range(1, count).ToDictionary(i => $"a{i}", i => $"v{i}");

    private static async Task<ApiException> Refused(Func<Task> call, string code)
    {
        var error = await Assert.ThrowsAsync<ApiException>(call);
        Assert.Equal(code, error.Code);
        return error;
    }

    [Fact]
    public async Task CreateThing_IsIdempotentForTheSameConfiguration_AndRefusesADifferentOne()
    {
        var name = Ids.NewId("reg");

        var first = await Thing(name).CreateThing(null, new Dictionary<string, string> { ["room"] = "kitchen" });
        var again = await Thing(name).CreateThing(null, new Dictionary<string, string> { ["room"] = "kitchen" });

        Assert.Equal(first.ThingId, again.ThingId);
        Assert.Equal(1, again.Version);
        await Refused(() => Thing(name).CreateThing(null, new Dictionary<string, string> { ["room"] = "hall" }), "ResourceAlreadyExistsException");
        var described = await Thing(name).DescribeThing();
        Assert.Equal(first.ThingId, described!.ThingId);
        Assert.Equal("kitchen", described.Attributes["room"]);
    }

    [Theory]
    [InlineData("bad name")]
    [InlineData("sl/ash")]
    public async Task CreateThing_WithABadName_IsRefused(string name)
    {
        await Refused(() => Thing(name).CreateThing(null, null), "InvalidRequestException");
    }

    [Fact]
    public async Task Attributes_ThreeWithoutAType_FiftyWithOne_AndTheirCharactersAreChecked()
    {
        var type = Ids.NewId("type");
        await Type(type).Create("typed", null);

        await Refused(() => Thing(Ids.NewId("reg")).CreateThing(null, Attributes(4)), "InvalidRequestException");
        await Thing(Ids.NewId("reg")).CreateThing(null, Attributes(3));
        await Thing(Ids.NewId("reg")).CreateThing(type, Attributes(50));
        await Refused(() => Thing(Ids.NewId("reg")).CreateThing(type, Attributes(51)), "InvalidRequestException");
        await Refused(() => Thing(Ids.NewId("reg")).CreateThing(null, new Dictionary<string, string> { ["bad name"] = "x" }), "InvalidRequestException");
        await Refused(() => Thing(Ids.NewId("reg")).CreateThing(null, new Dictionary<string, string> { ["ok"] = "no spaces" }), "InvalidRequestException");
        await Refused(() => Thing(Ids.NewId("reg")).CreateThing(null, new Dictionary<string, string> { ["ok"] = new string('v', 801) }), "InvalidRequestException");
        await Refused(() => Thing(Ids.NewId("reg")).CreateThing("no-such-type", null), "ResourceNotFoundException");
    }

    [Fact]
    public async Task UpdateThing_MergesOrReplacesAttributes_AnEmptyValueRemovesOne_AndChecksTheVersion()
    {
        var name = Ids.NewId("reg");
        await Thing(name).CreateThing(null, new Dictionary<string, string> { ["a"] = "1", ["b"] = "2" });

        var merged = await Thing(name).UpdateThing(new ThingUpdate(null, new AttributePayload(new Dictionary<string, string> { ["b"] = "", ["c"] = "3" }, Merge: true), 1, false));
        var replaced = await Thing(name).UpdateThing(new ThingUpdate(null, new AttributePayload(new Dictionary<string, string> { ["z"] = "9" }, Merge: false), null, false));

        Assert.Equal(new Dictionary<string, string> { ["a"] = "1", ["c"] = "3" }, merged.Attributes);
        Assert.Equal(2, merged.Version);
        Assert.Equal(new Dictionary<string, string> { ["z"] = "9" }, replaced.Attributes);
        Assert.Equal(3, replaced.Version);
        await Refused(() => Thing(name).UpdateThing(new ThingUpdate(null, null, 2, false)), "VersionConflictException");
        await Refused(() => Thing(Ids.NewId("none")).UpdateThing(new ThingUpdate(null, null, null, false)), "ResourceNotFoundException");
    }

    [Fact]
    public async Task RemovingTheType_NeedsTheAttributesToFitTheUntypedLimit()
    {
        var (type, name) = (Ids.NewId("type"), Ids.NewId("reg"));
        await Type(type).Create(null, ["a1"]);
        await Thing(name).CreateThing(type, Attributes(5));

        await Refused(() => Thing(name).UpdateThing(new ThingUpdate(null, null, null, RemoveThingType: true)), "InvalidRequestException");
        var untyped = await Thing(name).UpdateThing(new ThingUpdate(null, new AttributePayload(Attributes(2), Merge: false), null, RemoveThingType: true));

        Assert.Null(untyped.ThingTypeName);
        Assert.Equal(2, untyped.Attributes.Count);
    }

    [Fact]
    public async Task DeleteThing_ChecksTheVersion_AndAMissingThingIsFine()
    {
        var name = Ids.NewId("reg");
        await Thing(name).CreateThing(null, null);

        await Refused(() => Thing(name).DeleteThing(5), "VersionConflictException");
        await Thing(name).DeleteThing(1);
        await Thing(name).DeleteThing(null);

        Assert.Null(await Thing(name).DescribeThing());
    }

    [Fact]
    public async Task ThingType_Deprecated_TakesNoNewThings_AndIsDeletedOnlyAfterTheDelay_WhenUnused()
    {
        var type = Ids.NewId("type");
        var created = await Type(type).Create("lamps", ["room"]);
        Assert.Equal(created.ThingTypeId, (await Type(type).Create("lamps", ["room"])).ThingTypeId);
        await Refused(() => Type(type).Create("other", ["room"]), "ResourceAlreadyExistsException");
        await Refused(() => Type(type).Create(null, ["a", "b", "c", "d"]), "InvalidRequestException");
        var user = Ids.NewId("reg");
        await Thing(user).CreateThing(type, null);

        await Refused(() => Type(type).Delete(), "InvalidRequestException");                 // not deprecated
        var deprecated = await Type(type).Deprecate(undo: false);
        await Refused(() => Thing(Ids.NewId("reg")).CreateThing(type, null), "InvalidRequestException");
        await Refused(() => Type(type).Delete(), "InvalidRequestException");                 // too soon (300 ms here, AWS 5 min)
        await Task.WhenAll(Eventually.True(async () =>
        {
            try
            {
                await Type(type).Delete();
                return false;
            }
            catch (ApiException e) when (e.Message.Contains("still the type", StringComparison.Ordinal))
            {
                return true;                                                                // the delay passed; a thing still uses it
            }
            catch (ApiException)
            {
                return false;
            }
        }, "the deletion delay to pass"));
        await Thing(user).DeleteThing(null);
        await Type(type).Delete();

        Assert.True(deprecated.Deprecated);
        Assert.Null(await Type(type).Describe());
    }

    [Fact]
    public async Task Groups_NestAtMostSevenLevels_AndAGroupWithChildrenIsNotDeleted()
    {
        var names = Enumerable.Range(1, 8).Select(i => Ids.NewId($"g{i}")).ToList();
        string? parent = null;
        foreach (var name in names.Take(7))
        {
            await Group(name).Create(parent, null, null);
            parent = name;
        }

        await Refused(() => Group(names[7]).Create(names[6], null, null), "InvalidRequestException");
        var leaf = await Group(names[6]).Describe();
        Assert.Equal(names.Take(6), leaf!.Ancestors);
        Assert.Equal(names[0], leaf.RootGroupName);
        await Refused(() => Group(names[5]).Delete(null), "InvalidRequestException");
        await Refused(() => Group(Ids.NewId("orphan")).Create(Ids.NewId("missing"), null, null), "ResourceNotFoundException");
        await Group(names[6]).Delete(null);
        await Group(names[5]).Delete(1);
    }

    [Fact]
    public async Task GroupUpdate_MergesAttributes_AndChecksTheVersion()
    {
        var name = Ids.NewId("grp");
        await Group(name).Create(null, "first", new Dictionary<string, string> { ["site"] = "berlin" });

        var updated = await Group(name).Update("second", new AttributePayload(new Dictionary<string, string> { ["floor"] = "3" }, Merge: true), 1);

        Assert.Equal(2, updated.Version);
        Assert.Equal("second", updated.Description);
        Assert.Equal(new Dictionary<string, string> { ["site"] = "berlin", ["floor"] = "3" }, updated.Attributes);
        await Refused(() => Group(name).Update(null, null, 1), "VersionConflictException");
    }

    [Fact]
    public async Task Membership_OneGroupPerHierarchy_TenGroupsAtMost_ListedBothWays()
    {
        var (root, child, thing) = (Ids.NewId("root"), Ids.NewId("child"), Ids.NewId("member"));
        await Group(root).Create(null, null, null);
        await Group(child).Create(root, null, null);
        await Thing(thing).CreateThing(null, null);

        await Thing(thing).AddToThingGroup(child);
        await Thing(thing).AddToThingGroup(child);                                          // already in: fine
        await Refused(() => Thing(thing).AddToThingGroup(root), "InvalidRequestException");  // same hierarchy
        await Refused(() => Thing(thing).AddToThingGroup(Ids.NewId("nope")), "ResourceNotFoundException");
        await Refused(() => Thing(Ids.NewId("ghost")).AddToThingGroup(root), "ResourceNotFoundException");
        var others = Enumerable.Range(0, 9).Select(i => Ids.NewId($"other{i}")).ToList();
        foreach (var other in others)
        {
            await Group(other).Create(null, null, null);
            await Thing(thing).AddToThingGroup(other);
        }

        var extra = Ids.NewId("eleventh");
        await Group(extra).Create(null, null, null);
        await Refused(() => Thing(thing).AddToThingGroup(extra), "LimitExceededException");
        var query = fixture.Grains.GetGrain<IRegistryQueryGrain>(0);
        Assert.Equal([thing], (await query.ListThingsInThingGroup(root, recursive: true, null, 0)).Items);
        Assert.Empty((await query.ListThingsInThingGroup(root, recursive: false, null, 0)).Items);
        Assert.Equal(10, (await Thing(thing).ListThingGroups()).Count);

        await Thing(thing).RemoveFromThingGroup(child);
        await Thing(thing).AddToThingGroup(extra);
        Assert.Contains(extra, (await Thing(thing).ListThingGroups()).Select(g => g.ThingGroupName));
    }

    [Fact]
    public async Task RegistryEvents_CarryAwsFields_OnAwsTopics()
    {
        var (name, group) = (Ids.NewId("evt"), Ids.NewId("evtgrp"));
        var broker = RecordingBroker.Shared;

        var thing = await Thing(name).CreateThing(null, new Dictionary<string, string> { ["k"] = "v" });
        await Thing(name).UpdateThing(new ThingUpdate(null, new AttributePayload(new Dictionary<string, string> { ["k"] = "w" }, true), null, false));
        await Group(group).Create(null, "d", null);
        await Thing(name).AddToThingGroup(group);
        await Thing(name).DeleteThing(null);

        var created = JsonNode.Parse(Assert.Single(broker.On($"$aws/events/thing/{name}/created")))!;
        Assert.Equal("THING_EVENT", (string)created["eventType"]!);
        Assert.Equal("CREATED", (string)created["operation"]!);
        Assert.Equal(thing.ThingId, (string)created["thingId"]!);
        Assert.Equal(1, (long)created["versionNumber"]!);
        Assert.Equal("v", (string)created["attributes"]!["k"]!);
        Assert.Equal(2, (long)JsonNode.Parse(Assert.Single(broker.On($"$aws/events/thing/{name}/updated")))!["versionNumber"]!);
        Assert.Single(broker.On($"$aws/events/thing/{name}/deleted"));
        Assert.Equal("THING_GROUP_EVENT", (string)JsonNode.Parse(Assert.Single(broker.On($"$aws/events/thingGroup/{group}/created")))!["eventType"]!);
        var added = JsonNode.Parse(Assert.Single(broker.On($"$aws/events/thingGroupMembership/thingGroup/{group}/thing/{name}/added")))!;
        Assert.Equal("THING_GROUP_MEMBERSHIP_EVENT", (string)added["eventType"]!);
        Assert.EndsWith($":thing/{name}", (string)added["thingArn"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ListThings_PagesAndFilters_ThroughTheQueryGrain()
    {
        var type = Ids.NewId("listtype");
        await Type(type).Create(null, ["color"]);
        var names = Enumerable.Range(0, 5).Select(i => $"{type}-{i}").ToList();
        foreach (var (name, i) in names.Select((n, i) => (n, i)))
        {
            await Thing(name).CreateThing(type, new Dictionary<string, string> { ["color"] = i % 2 == 0 ? "red" : "blue" });
        }

        var query = fixture.Grains.GetGrain<IRegistryQueryGrain>(0);
        var red = await query.ListThings(new ThingQuery("color", "red", false, type, null, 0));
        var page1 = await query.ListThings(new ThingQuery(null, null, false, type, null, 2));
        var page2 = await query.ListThings(new ThingQuery(null, null, false, type, page1.NextToken, 2));

        Assert.Equal([names[0], names[2], names[4]], red.Items.Select(t => t.ThingName));
        Assert.Equal(names.Take(2), page1.Items.Select(t => t.ThingName));
        Assert.Equal(names.Skip(2).Take(2), page2.Items.Select(t => t.ThingName));
        await Refused(() => query.ListThings(new ThingQuery(null, null, false, null, null, 251)), "InvalidRequestException");
        await Refused(() => query.ListThings(new ThingQuery(null, "x", false, null, null, 10)), "InvalidRequestException");
    }
}
