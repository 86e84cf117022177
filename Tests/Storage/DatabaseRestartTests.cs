using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Rules;

namespace OrleansIot.Tests.Storage;

/// <summary>
/// PostgreSQL ends every session of the node's database, as a restart or a failover does: each pooled connection's
/// next use fails once (57P01, "terminating connection due to administrator command"). What was acknowledged before
/// is not lost, and what arrives right after is taken, not refused: the writes that meet a broken connection are
/// tried again (rule sinks, the telemetry stream, shadows), and an API call that still meets one answers 503 with
/// Retry-After, never 500.
/// </summary>
[Collection(PostgresCollection.Name)]
public sealed class DatabaseRestartTests(PostgresServer postgres) : IAsyncLifetime
{
    private PostgresRulesTests.PostgresNode _node = null!;
    private string _connectionString = "";

    public async Task InitializeAsync()
    {
        _connectionString = await postgres.CreateDatabaseAsync("restart");
        _node = new PostgresRulesTests.PostgresNode(_connectionString);
        await _node.InitializeAsync();
    }

    public Task DisposeAsync() => _node.DisposeAsync();

    private Task ExecuteAsync(string sql) => PostgresRulesTests.ExecuteAsync(_connectionString, sql);

    private Task<List<object?[]>> RowsAsync(string sql) => PostgresRulesTests.RowsAsync(_connectionString, sql);

    private Task BreakEveryConnectionAsync() =>
        ExecuteAsync("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()");

    /// <summary>
    /// The rule's writes are tried again, so every acknowledged message still becomes a row and none goes to the
    /// error action. Before, the first batch after the break failed to the error action (a PostgreSQL restart under
    /// load lost a rule sink 232 of 615 acknowledged messages, bench/resilience-run.sh).
    /// </summary>
    [Fact]
    public async Task PostgresAction_EveryConnectionBroken_AsByADatabaseRestart_NoAcknowledgedMessageLost()
    {
        var table = Ids.NewId("restart").Replace('-', '_');
        await ExecuteAsync($"CREATE TABLE {table} (k int NOT NULL)");
        var root = Ids.NewId("prs");
        var errors = "pgerr-" + root;
        await Rules.RuleActionsTests.CreateRuleAsync(_node.Http, "pg_restart_" + root.Replace('-', '_'),
            $"SELECT k FROM '{root}/k'",
            [Rules.RuleActionsTests.Action("postgres", new JsonObject { ["table"] = table })],
            Rules.RuleActionsTests.Action("queue", new JsonObject { ["queueName"] = errors }));
        var device = await _node.ConnectAsync(Ids.NewId("dev"));
        async Task PublishAsync(int k)
        {
            // A publish the node could not make durable (its own write met a broken connection) is refused, not
            // acknowledged; the device sends it again, as an SDK does.
            await Eventually.True(async () => (await device.PublishStringAsync($"{root}/k", $"{{\"k\":{k}}}", MqttQualityOfServiceLevel.AtLeastOnce)).IsSuccess,
                $"publish {k} acknowledged");
        }

        for (var k = 1; k <= 5; k++)
        {
            await PublishAsync(k);
        }

        await Eventually.Get(() => RowsAsync($"SELECT k FROM {table}"), r => r.Count == 5, "the first five rows (the writer's connections are pooled)");

        await BreakEveryConnectionAsync();
        // The first publish after the break is acknowledged, not refused: its stream write meets a broken pooled
        // connection and is tried again while the device waits for its PUBACK.
        var first = await device.PublishStringAsync($"{root}/k", "{\"k\":6}", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.True(first.IsSuccess, $"publish 6 right after the break: {first.ReasonCode} {first.ReasonString}");
        for (var k = 7; k <= 10; k++)
        {
            await PublishAsync(k);
        }

        var rows = await Eventually.Get(() => RowsAsync($"SELECT DISTINCT k FROM {table} ORDER BY k"), r => r.Count == 10, "a row for every acknowledged message",
            TimeSpan.FromSeconds(30));
        Assert.Equal(Enumerable.Range(1, 10), rows.Select(r => (int)r[0]!));

        // Nothing went to the error action. The API call may itself meet a connection the break left in the pool:
        // that is a 503 with Retry-After (AWS SDKs retry it), never a 500.
        var failed = await Eventually.Get(async () =>
        {
            var response = await _node.Http.PostAsync($"/api/queues/{errors}/receive?maxMessages=10", null);
            var body = await response.Content.ReadAsStringAsync();
            if (response.StatusCode == HttpStatusCode.ServiceUnavailable)
            {
                Assert.Equal("ServiceUnavailableException", (string)JsonNode.Parse(body)!["code"]!);
                Assert.Equal("1", response.Headers.RetryAfter?.Delta?.TotalSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture));
                return null;
            }

            Assert.True(response.IsSuccessStatusCode, body);
            return JsonNode.Parse(body);
        }, b => b is not null, "an answer from the error queue");
        Assert.Empty(failed!["messages"]!.AsArray());
    }

    /// <summary>
    /// A shadow update right after the break is accepted (its write is tried again), and the versions carry on.
    /// Before, it was a 500 ("Could not store shadow") in the resilience run's PostgreSQL restart.
    /// </summary>
    [Fact]
    public async Task ShadowUpdate_RightAfterEveryConnectionBroke_IsAccepted_AndTheVersionCarriesOn()
    {
        var thing = Ids.NewId("restart-thing");
        async Task<HttpResponseMessage> UpdateAsync(int k) =>
            await _node.Http.PostAsync($"/things/{thing}/shadow", new StringContent($"{{\"state\":{{\"reported\":{{\"k\":{k}}}}}}}"));

        for (var k = 1; k <= 3; k++)
        {
            (await UpdateAsync(k)).EnsureSuccessStatusCode();
        }

        await BreakEveryConnectionAsync();
        var response = await UpdateAsync(4);
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        Assert.Equal(4, (int)(await response.Content.ReadFromJsonAsync<JsonObject>())!["version"]!);
        var shadow = (await _node.Http.GetFromJsonAsync<JsonObject>($"/things/{thing}/shadow"))!;
        Assert.Equal(4, (int)shadow["state"]!["reported"]!["k"]!);
    }
}
