using System.Net;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Npgsql;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Observability;

/// <summary><c>/readyz</c> of a PostgreSQL node (its own process): ready with its storage, not ready without it.</summary>
[Collection(PostgresCollection.Name)]
public sealed class ReadinessTests(PostgresServer postgres)
{
    [Fact]
    public async Task APostgresNode_IsReadyWhileItsDatabaseAnswers_AndSaysWhyNotWhenItIsGone()
    {
        var connectionString = await postgres.CreateDatabaseAsync("ready");
        await using var silo = SiloProcess.Start(new Dictionary<string, string>
        {
            ["Iot__Storage"] = "Postgres",
            ["ConnectionStrings__Iot"] = connectionString,
            ["Orleans__ClusterId"] = "ready-" + Guid.NewGuid().ToString("N")[..8],
        });
        await silo.WaitUntilReadyAsync();
        using var probe = new HttpClient { BaseAddress = silo.Http.BaseAddress };

        var ready = await Eventually.Get(() => probe.GetAsync("/readyz"), r => r.StatusCode == HttpStatusCode.OK, "the node to be ready");
        var body = (await ready.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("Healthy", body["checks"]!["storage"]!["status"]!.GetValue<string>());
        Assert.Equal("Healthy", body["checks"]!["cluster"]!["status"]!.GetValue<string>());

        // The database goes away under the running node: not ready, and the body says which check failed.
        var database = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        await using (var admin = new NpgsqlConnection(new NpgsqlConnectionStringBuilder(connectionString) { Database = "postgres", Pooling = false }.ConnectionString))
        {
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE \"{database}\" WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }

        var notReady = await Eventually.Get(() => probe.GetAsync("/readyz"), r => r.StatusCode == HttpStatusCode.ServiceUnavailable, "the node to report not ready");
        var why = (await notReady.Content.ReadFromJsonAsync<JsonObject>())!;
        Assert.Equal("not ready", why["status"]!.GetValue<string>());
        Assert.Equal("Unhealthy", why["checks"]!["storage"]!["status"]!.GetValue<string>());
        Assert.Contains("PostgreSQL", why["checks"]!["storage"]!["description"]!.GetValue<string>(), StringComparison.Ordinal);

        // Alive all the while: liveness is about the process, not its dependencies.
        Assert.Equal(HttpStatusCode.OK, (await probe.GetAsync("/healthz")).StatusCode);
    }
}
