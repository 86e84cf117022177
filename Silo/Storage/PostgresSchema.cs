using System.Security.Cryptography;
using System.Text;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Npgsql;

namespace OrleansIot.Silo.Storage;

/// <summary>
/// Brings a PostgreSQL database to the schema this build needs: applies the numbered scripts of deploy/postgres
/// (embedded in the silo) that the database has not seen, each in its own transaction, and records them in
/// <c>iot_schema_migrations</c>. An advisory lock makes silos that start together take turns, so an empty
/// database is all a new cluster needs.
/// </summary>
public sealed partial class PostgresSchema(NpgsqlDataSource dataSource, ILogger<PostgresSchema> logger) : IHostedService
{
    private const string ResourcePrefix = "OrleansIot.Schema.";

    // Any constant works, as long as every silo uses the same one ("OIOT" in ASCII).
    private const long MigrationLockKey = 0x4F494F54;

    public Task StartAsync(CancellationToken cancellationToken) => MigrateAsync(cancellationToken);

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>The embedded scripts in the order they apply: (version, name, text).</summary>
    public static IReadOnlyList<(int Version, string Name, string Sql)> Scripts()
    {
        var assembly = typeof(PostgresSchema).Assembly;
        var scripts = new List<(int, string, string)>();
        foreach (var resource in assembly.GetManifestResourceNames().Where(n => n.StartsWith(ResourcePrefix, StringComparison.Ordinal)))
        {
            var name = resource[ResourcePrefix.Length..];
            var underscore = name.IndexOf('_', StringComparison.Ordinal);
            if (underscore <= 0 || !int.TryParse(name.AsSpan(0, underscore), out var version))
            {
                throw new InvalidOperationException($"Schema script '{name}' must be named NNN_description.sql.");
            }

            using var stream = assembly.GetManifestResourceStream(resource)!;
            using var reader = new StreamReader(stream, Encoding.UTF8);
            scripts.Add((version, name, reader.ReadToEnd()));
        }

        scripts.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return scripts;
    }

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        await using var connection = await dataSource.OpenConnectionAsync(cancellationToken);
        await ExecuteAsync(connection, null, $"SELECT pg_advisory_lock({MigrationLockKey})", cancellationToken);
        try
        {
            await ExecuteAsync(connection, null, """
                CREATE TABLE IF NOT EXISTS iot_schema_migrations (
                    version    integer     PRIMARY KEY,
                    name       text        NOT NULL,
                    checksum   text        NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now())
                """, cancellationToken);

            var applied = new Dictionary<int, string>();
            await using (var command = new NpgsqlCommand("SELECT version, checksum FROM iot_schema_migrations", connection))
            await using (var reader = await command.ExecuteReaderAsync(cancellationToken))
            {
                while (await reader.ReadAsync(cancellationToken))
                {
                    applied[reader.GetInt32(0)] = reader.GetString(1);
                }
            }

            foreach (var (version, name, sql) in Scripts())
            {
                var checksum = Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(sql)));
                if (applied.TryGetValue(version, out var appliedChecksum))
                {
                    if (appliedChecksum != checksum)
                    {
                        // Scripts are append-only once released; a changed one is reported, not re-run.
                        LogChecksumMismatch(logger, name);
                    }

                    continue;
                }

                await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
                await ExecuteAsync(connection, transaction, sql, cancellationToken);
                await using (var record = new NpgsqlCommand(
                    "INSERT INTO iot_schema_migrations (version, name, checksum) VALUES (@version, @name, @checksum)", connection, transaction))
                {
                    record.Parameters.AddWithValue("version", version);
                    record.Parameters.AddWithValue("name", name);
                    record.Parameters.AddWithValue("checksum", checksum);
                    await record.ExecuteNonQueryAsync(cancellationToken);
                }

                await transaction.CommitAsync(cancellationToken);
                LogApplied(logger, name);
            }
        }
        finally
        {
            await ExecuteAsync(connection, null, $"SELECT pg_advisory_unlock({MigrationLockKey})", CancellationToken.None);
        }
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql, CancellationToken cancellationToken)
    {
        await using var command = new NpgsqlCommand(sql, connection, transaction);
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    [LoggerMessage(EventId = 3002, Level = LogLevel.Information, Message = "Applied schema script {Name}")]
    private static partial void LogApplied(ILogger logger, string name);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Schema script {Name} differs from the version this database applied; scripts are append-only, add a new one instead")]
    private static partial void LogChecksumMismatch(ILogger logger, string name);
}
