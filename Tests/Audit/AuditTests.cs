using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions.Audit;
using OrleansIot.Grains.Audit;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Audit;

/// <summary>Every state-changing control-plane call is in the audit log: who, what, on what, when, from where, outcome.</summary>
[Collection(NodeCollection.Name)]
public sealed class AuditApiTests(NodeFixture node)
{
    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    [Fact]
    public async Task ControlPlaneCalls_AreAudited_WithTheirOutcome_ReadsAndBodiesAreNot()
    {
        var rule = "audit_" + Guid.NewGuid().ToString("N")[..10];
        var since = DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeMilliseconds();
        var payload = """{"sql":"SELECT * FROM 'audit/secret-in-body'","actions":[{"republish":{"topic":"x"}}]}""";
        Assert.Equal(HttpStatusCode.OK, (await node.Http.PostAsync($"/api/rules/{rule}", Body(payload))).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await node.Http.PostAsync($"/api/rules/{rule}", Body(payload))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await node.Http.GetAsync($"/api/rules/{rule}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await node.Http.PostAsync("/api/rules/test", Body("""{"sql":"SELECT 1 AS a FROM 'x'","topic":"x","payload":{}}"""))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await node.Http.DeleteAsync($"/api/rules/{rule}")).StatusCode);

        var events = await Eventually.Get(
            async () => JsonNode.Parse(await node.Http.GetStringAsync($"/api/audit?from={since}&maxResults=1000"))!["events"]!.AsArray()
                .Where(e => ((string)e!["target"]!).Contains(rule, StringComparison.Ordinal)).ToList(),
            e => e.Count >= 3, "three audited calls");

        Assert.Equal([("DeleteTopicRule", 200), ("CreateTopicRule", 409), ("CreateTopicRule", 200)], events.Select(e => ((string)e!["operation"]!, (int)e["status"]!)));
        Assert.All(events, e =>
        {
            Assert.Equal($"ruleName={rule}", (string)e!["target"]!);
            Assert.Equal("bootstrap", (string)e["principal"]!);
            Assert.Equal("127.0.0.1", (string)e["sourceAddress"]!);
        });
        var all = await node.Http.GetStringAsync($"/api/audit?from={since}&maxResults=1000");
        Assert.DoesNotContain("secret-in-body", all, StringComparison.Ordinal);
        Assert.DoesNotContain("TestRuleSql", all, StringComparison.Ordinal);
        Assert.DoesNotContain("GetTopicRule", all, StringComparison.Ordinal);

        var first = JsonNode.Parse(await node.Http.GetStringAsync($"/api/audit?from={since}&operation=CreateTopicRule&maxResults=1"))!;
        Assert.Single(first["events"]!.AsArray());
        var second = JsonNode.Parse(await node.Http.GetStringAsync($"/api/audit?from={since}&operation=CreateTopicRule&maxResults=1&nextToken={(string)first["nextToken"]!}"))!;
        Assert.NotEqual(first["events"]![0]!.ToJsonString(), second["events"]![0]!.ToJsonString());
        Assert.Equal(HttpStatusCode.BadRequest, (await node.Http.GetAsync("/api/audit?maxResults=0")).StatusCode);
    }

    [Fact]
    public async Task CallsWhoseTargetIsInTheBody_OrMadeByTheCall_NameItInTheAudit()
    {
        var template = "audit-" + Guid.NewGuid().ToString("N")[..8];
        var since = DateTimeOffset.UtcNow.AddSeconds(-1).ToUnixTimeMilliseconds();
        await ApiAssert.OkAsync(await node.Http.PostAsync("/api/provisioning-templates", Body(new JsonObject { ["templateName"] = template, ["templateBody"] = """{"Resources":{}}""" }.ToJsonString())));
        var certificate = await ApiAssert.OkAsync(await node.Http.PostAsync("/api/keys-and-certificate", null));

        string TargetOf(JsonNode page, string operation) => (string)page["events"]!.AsArray().First(e => (string)e!["operation"]! == operation)!["target"]!;
        var page = await Eventually.Get(
            async () => JsonNode.Parse(await node.Http.GetStringAsync($"/api/audit?from={since}&principal=bootstrap&maxResults=1000"))!,
            p => p["events"]!.AsArray().Count(e => (string)e!["operation"]! is "CreateProvisioningTemplate" or "CreateKeysAndCertificate") >= 2, "both calls audited");

        Assert.Contains($"templateName={template}", TargetOf(page, "CreateProvisioningTemplate"), StringComparison.Ordinal);
        Assert.Contains($"certificateId={(string)certificate["certificateId"]!}", page["events"]!.AsArray().Select(e => (string)e!["target"]!));
    }
}

/// <summary>Both audit stores: newest first, filters, paging.</summary>
public abstract class AuditStoreContract
{
    protected abstract Task<IAuditStore> StoreAsync();

    [Fact]
    public async Task Query_IsNewestFirst_Filtered_AndPaged()
    {
        var store = await StoreAsync();
        var who = Ids.NewId("key");
        var t0 = DateTimeOffset.UtcNow;
        await store.AppendAsync([.. Enumerable.Range(0, 5).Select(i => new AuditRecord(t0.AddMilliseconds(i), who, i % 2 == 0 ? "CreateThing" : "DeleteThing", $"thingName=t{i}", "10.0.0.1", 200))]);

        var (page1, last1) = await store.QueryAsync(t0.AddSeconds(-1), t0.AddSeconds(1), "CreateThing", who, null, 2);
        var (page2, _) = await store.QueryAsync(t0.AddSeconds(-1), t0.AddSeconds(1), "CreateThing", who, last1, 2);
        var (other, _) = await store.QueryAsync(t0.AddSeconds(-1), t0.AddSeconds(1), null, Ids.NewId("nobody"), null, 10);
        var (early, _) = await store.QueryAsync(t0.AddSeconds(-10), t0.AddSeconds(-5), null, who, null, 10);

        Assert.Equal(["thingName=t4", "thingName=t2"], page1.Select(r => r.Target));
        Assert.Equal(["thingName=t0"], page2.Select(r => r.Target));
        Assert.Empty(other);
        Assert.Empty(early);
    }

    [Fact]
    public async Task RecordsStoredOutOfOrder_AreListedByTheirTime()
    {
        // Records are written after each answer, so a later call's record may be stored first.
        var store = await StoreAsync();
        var who = Ids.NewId("key");
        var t0 = DateTimeOffset.UtcNow;
        await store.AppendAsync([new AuditRecord(t0.AddMilliseconds(2), who, "DeleteThing", "thingName=b", "10.0.0.1", 200)]);
        await store.AppendAsync([new AuditRecord(t0.AddMilliseconds(1), who, "CreateThing", "thingName=a", "10.0.0.1", 200)]);
        await store.AppendAsync([new AuditRecord(t0.AddMilliseconds(3), who, "CreateThing", "thingName=c", "10.0.0.1", 409)]);

        var (first, cursor) = await store.QueryAsync(t0.AddSeconds(-1), t0.AddSeconds(1), null, who, null, 2);
        var (rest, _) = await store.QueryAsync(t0.AddSeconds(-1), t0.AddSeconds(1), null, who, cursor, 2);

        Assert.Equal(["thingName=c", "thingName=b", "thingName=a"], first.Concat(rest).Select(r => r.Target));
    }
}

[Collection(ClusterCollection.Name)]
public sealed class MemoryAuditStoreTests(ClusterFixture cluster) : AuditStoreContract
{
    protected override Task<IAuditStore> StoreAsync() => Task.FromResult<IAuditStore>(new MemoryAuditStore(cluster.Grains));
}

[Collection(PostgresCollection.Name)]
public sealed class PostgresAuditStoreTests(PostgresServer postgres) : AuditStoreContract
{
    protected override async Task<IAuditStore> StoreAsync() => new PostgresAuditStore(await postgres.CreateMigratedDataSourceAsync("audit"));
}
