using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using Npgsql;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Rules;

/// <summary>Rules on a PostgreSQL-mode node: rows land in a table of the user's, the analytics sink and queues are PostgreSQL's.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresRulesTests(PostgresServer postgres) : IAsyncLifetime
{
    private PostgresNode _node = null!;
    private string _connectionString = "";

    public async Task InitializeAsync()
    {
        _connectionString = await postgres.CreateDatabaseAsync("rules");
        _node = new PostgresNode(_connectionString);
        await _node.InitializeAsync();
    }

    public Task DisposeAsync() => _node.DisposeAsync();

    private Task ExecuteAsync(string sql) => ExecuteAsync(_connectionString, sql);

    private Task<List<object?[]>> RowsAsync(string sql) => RowsAsync(_connectionString, sql);

    internal static async Task ExecuteAsync(string connectionString, string sql)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    internal static async Task<List<object?[]>> RowsAsync(string connectionString, string sql)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using var command = dataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync();
        var rows = new List<object?[]>();
        while (await reader.ReadAsync())
        {
            var row = new object?[reader.FieldCount];
            for (var i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }

            rows.Add(row);
        }

        return rows;
    }

    [Fact]
    public async Task PostgresAction_RowsLandInTheTable_TypedByItsColumns_OnceByTraceId_AndAMissingColumnFailsToTheErrorAction()
    {
        await ExecuteAsync("""
            CREATE TABLE readings (trace uuid PRIMARY KEY, device text NOT NULL, temperature numeric, at timestamptz, doc jsonb);
            CREATE TABLE events (device text, level int, note text)
            """);
        var root = Ids.NewId("pg");
        await RuleActionsTests.CreateRuleAsync(_node.Http, "pg_columns_" + root.Replace('-', '_'),
            $"SELECT temperature FROM '{root}/+/t'",
            [RuleActionsTests.Action("postgres", new JsonObject
            {
                ["table"] = "readings",
                ["columns"] = new JsonObject
                {
                    ["trace"] = "${traceid()}",
                    ["device"] = "${topic(2)}",
                    ["temperature"] = "${temperature}",
                    ["at"] = "${parse_time(\"yyyy-MM-dd'T'HH:mm:ss'Z'\", timestamp())}",
                },
                ["jsonColumn"] = "doc",
            })]);
        // Output fields become columns (DynamoDBv2 style); 'Level' folds to the column level, as unquoted SQL names do.
        await RuleActionsTests.CreateRuleAsync(_node.Http, "pg_fields_" + root.Replace('-', '_'),
            $"SELECT topic(2) AS device, level AS Level, note FROM '{root}/+/e'",
            [RuleActionsTests.Action("postgres", new JsonObject { ["table"] = "public.events" })]);
        var errors = "pgerr-" + root;
        await RuleActionsTests.CreateRuleAsync(_node.Http, "pg_missing_" + root.Replace('-', '_'),
            $"SELECT level, 1 AS nosuchcolumn FROM '{root}/+/e'",
            [RuleActionsTests.Action("postgres", new JsonObject { ["table"] = "events" })],
            RuleActionsTests.Action("queue", new JsonObject { ["queueName"] = errors }));
        var device = await _node.ConnectAsync(Ids.NewId("dev"));

        await device.PublishStringAsync($"{root}/d1/t", "{\"temperature\":21.5}", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.PublishStringAsync($"{root}/d1/t", "{\"humidity\":3}", MqttQualityOfServiceLevel.AtLeastOnce);   // temperature Undefined: NULL
        await device.PublishStringAsync($"{root}/d2/e", "{\"level\":3,\"note\":\"it's; DROP TABLE readings\"}", MqttQualityOfServiceLevel.AtLeastOnce);

        var readings = await Eventually.Get(() => RowsAsync("SELECT device, temperature, at, doc::text FROM readings ORDER BY at, temperature NULLS LAST"), r => r.Count == 2, "two readings rows");
        Assert.Equal(["d1", "d1"], readings.Select(r => r[0]));
        Assert.Equal(21.5m, readings[0][1]);
        Assert.Null(readings[1][1]);
        Assert.InRange((DateTime)readings[0][2]!, DateTime.UtcNow.AddMinutes(-5), DateTime.UtcNow.AddMinutes(1));
        Assert.Equal("{\"temperature\": 21.5}", readings[0][3]);
        var events = await Eventually.Get(() => RowsAsync("SELECT device, level, note FROM events"), r => r.Count == 1, "the events row");
        Assert.Equal(["d2", 3, "it's; DROP TABLE readings"], events[0]);

        var error = Assert.Single(await RuleActionsTests.DrainQueueAsync(_node.Http, errors, 1, "the error document"));
        Assert.Equal("PostgresAction", (string)error["failures"]![0]!["failedAction"]!);
        Assert.Contains("has no column 'nosuchcolumn'", (string)error["failures"]![0]!["errorMessage"]!, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Timeseries_InPostgres_AnswersTheTelemetryApi()
    {
        var root = Ids.NewId("pts");
        await RuleActionsTests.CreateRuleAsync(_node.Http, "pg_ts_" + root.Replace('-', '_'),
            $"SELECT temperature FROM '{root}/+/telemetry'",
            [RuleActionsTests.Action("timeseries", new JsonObject { ["thingName"] = "${topic(2)}" })]);
        var device = await _node.ConnectAsync(Ids.NewId("dev"));
        var thing = Ids.NewId("thing");

        foreach (var t in new[] { 1, 2, 3, 6 })
        {
            await device.PublishStringAsync($"{root}/{thing}/telemetry", $"{{\"temperature\":{t}}}", MqttQualityOfServiceLevel.AtLeastOnce);
        }

        var buckets = await Eventually.Get(
            async () => (await _node.Http.GetFromJsonAsync<JsonObject>($"/api/telemetry?thingName={thing}&path=temperature&bucket=1d&agg=avg"))!["buckets"]!.AsArray(),
            b => b.Count == 1 && (int)b[0]!["count"]! == 4, "four points in PostgreSQL");
        Assert.Equal(3.0, (double)buckets[0]!["value"]!);
        var rows = await RowsAsync($"SELECT count(*) FROM iot_telemetry WHERE thing_name = '{thing}'");
        Assert.Equal(4L, rows[0][0]);
    }

    internal sealed class PostgresNode(string connectionString) : NodeFixture
    {
        protected override IEnumerable<string> Settings => ["Iot:Storage=Postgres", $"ConnectionStrings:Iot={connectionString}", "Iot:Auth:AllowAnonymous=true"];
    }
}
