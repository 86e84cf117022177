using System.Diagnostics;
using System.Collections.Concurrent;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Protocol;
using Npgsql;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Rules;

/// <summary>PostgreSQL mode's promise: a PUBACKed message reaches the sink even when a node dies under load.</summary>
[Collection(PostgresCollection.Name)]
public sealed class RulesDeliveryTests(PostgresServer postgres)
{
    [Fact]
    public async Task KillANodeUnderLoad_NoPubackedMessageIsMissingFromTheSink()
    {
        var connectionString = await postgres.CreateDatabaseAsync("delivery");
        var settings = new Dictionary<string, string>
        {
            ["Iot__Storage"] = "Postgres",
            ["ConnectionStrings__Iot"] = connectionString,
            ["Orleans__ClusterId"] = "delivery-" + Guid.NewGuid().ToString("N")[..8],
            ["Orleans__Membership__ProbeTimeout"] = "00:00:01",
            ["Orleans__Membership__NumMissedProbesLimit"] = "2",
            ["Orleans__Membership__NumVotesForDeathDeclaration"] = "1",
            ["Iot__Telemetry__RedeliverAfter"] = "00:00:05",
        };
        await using var survivor = SiloProcess.Start(settings);
        await survivor.WaitUntilReadyAsync();
        await using var doomed = SiloProcess.Start(settings);
        await doomed.WaitUntilReadyAsync();

        var root = Ids.NewId("kill");
        await RuleActionsTests.CreateRuleAsync(survivor.Http, "kill_" + Guid.NewGuid().ToString("N")[..8],
            $"SELECT seq, topic(2) AS device FROM '{root}/+/t'",
            [RuleActionsTests.Action("timeseries", new JsonObject { ["thingName"] = "${topic(2)}" })]);

        // Wait until the rule runs (evaluators refresh within a second), so every later message meets it.
        using var probe = await survivor.ConnectAsync(Ids.NewId("probe"));
        await Eventually.True(async () =>
        {
            await probe.PublishStringAsync($"{root}/probe/t", "{\"seq\":0}", MqttQualityOfServiceLevel.AtLeastOnce);
            return await CountAsync(connectionString, "probe") > 0;
        }, "the rule running", TimeSpan.FromSeconds(30));

        // Twenty devices on the survivor publish numbered QoS 1 messages; the other node dies along the way. Its
        // partitions, taken events and evaluators move to the survivor.
        var acked = new ConcurrentBag<(string Device, int Seq)>();
        var devices = Enumerable.Range(0, 20).Select(i => $"{root}-d{i}").ToList();
        using var kill = new CancellationTokenSource();
        var publishers = devices.Select(device => Task.Run(async () =>
        {
            using var client = await survivor.ConnectAsync(device);
            for (var seq = 1; seq <= 60; seq++)
            {
                try
                {
                    var ack = await client.PublishStringAsync($"{root}/{device}/t", $"{{\"seq\":{seq}}}", MqttQualityOfServiceLevel.AtLeastOnce);
                    if (ack.IsSuccess)
                    {
                        acked.Add((device, seq));
                    }
                }
                catch (Exception ex) when (ex is MQTTnet.Exceptions.MqttCommunicationException or OperationCanceledException)
                {
                    // not acknowledged: not promised
                    if (!client.IsConnected)
                    {
                        await client.ReconnectAsync();
                    }
                }

                if (seq == 20 && device == devices[0])
                {
                    await kill.CancelAsync();
                }

                await Task.Delay(10);
            }
        })).ToList();
        await Task.Delay(Timeout.Infinite, kill.Token).ContinueWith(_ => { }, TaskScheduler.Default);
        doomed.Kill();
        await Task.WhenAll(publishers);

        Assert.True(acked.Count >= devices.Count * 30, $"only {acked.Count} publishes were acknowledged");
        List<(string Device, int Seq)> missing = [];
        for (var waited = Stopwatch.StartNew(); waited.Elapsed < TimeSpan.FromSeconds(120); await Task.Delay(200))
        {
            var stored = await StoredAsync(connectionString, root);
            missing = [.. acked.Where(a => !stored.Contains(a))];
            if (missing.Count == 0)
            {
                break;
            }
        }

        Assert.True(missing.Count == 0,
            $"{missing.Count} of {acked.Count} acknowledged messages are not in the sink, e.g. {string.Join(", ", missing.Take(10))}\n{survivor.Output[^Math.Min(survivor.Output.Length, 6000)..]}");
    }

    private static async Task<long> CountAsync(string connectionString, string thing)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using var command = dataSource.CreateCommand("SELECT count(*) FROM iot_telemetry WHERE thing_name = @thing");
        command.Parameters.AddWithValue("thing", thing);
        try
        {
            return (long)(await command.ExecuteScalarAsync())!;
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UndefinedTable)
        {
            return 0;
        }
    }

    private static async Task<HashSet<(string, int)>> StoredAsync(string connectionString, string root)
    {
        await using var dataSource = NpgsqlDataSource.Create(connectionString);
        await using var command = dataSource.CreateCommand("SELECT thing_name, (payload->>'seq')::int FROM iot_telemetry WHERE thing_name LIKE @prefix");
        command.Parameters.AddWithValue("prefix", root + "-d%");
        var stored = new HashSet<(string, int)>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            stored.Add((reader.GetString(0), reader.GetInt32(1)));
        }

        return stored;
    }
}
