using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using OrleansIot.Silo.Storage;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Storage;

[Collection(PostgresCollection.Name)]
public sealed class PostgresSchemaTests(PostgresServer postgres)
{
    // Every key the Orleans 10.4.2 ADO.NET providers look up (clustering, persistence, reminders, streaming).
    public static readonly string[] ProviderQueryKeys =
    [
        "GatewaysQueryKey", "MembershipReadRowKey", "MembershipReadAllKey", "InsertMembershipVersionKey", "UpdateIAmAlivetimeKey",
        "InsertMembershipKey", "UpdateMembershipKey", "DeleteMembershipTableEntriesKey", "CleanupDefunctSiloEntriesKey", "CleanupDefunctSiloEntryKey",
        "ReadFromStorageKey", "WriteToStorageKey", "ClearStorageKey", "DeleteStorageKey",
        "ReadReminderRowsKey", "ReadReminderRowKey", "ReadRangeRows1Key", "ReadRangeRows2Key", "UpsertReminderRowKey", "DeleteReminderRowKey", "DeleteReminderRowsKey",
        "QueueStreamMessageKey", "GetStreamMessagesKey", "ConfirmStreamMessagesKey", "FailStreamMessageKey", "EvictStreamMessagesKey", "EvictStreamDeadLettersKey",
    ];

    private static PostgresSchema Schema(NpgsqlDataSource dataSource) => new(dataSource, NullLogger<PostgresSchema>.Instance);

    [Fact]
    public async Task Migrate_OnAnEmptyDatabase_InstallsEveryProviderQuery()
    {
        await using var dataSource = NpgsqlDataSource.Create(await postgres.CreateDatabaseAsync());

        await Schema(dataSource).MigrateAsync(CancellationToken.None);

        var keys = await ReadColumnAsync(dataSource, "SELECT querykey FROM orleansquery");
        Assert.Empty(ProviderQueryKeys.Except(keys));
        var applied = await ReadColumnAsync(dataSource, "SELECT name FROM iot_schema_migrations ORDER BY version");
        Assert.Equal(PostgresSchema.Scripts().Select(s => s.Name), applied);
    }

    [Fact]
    public async Task Migrate_Twice_AndConcurrently_IsSafe()
    {
        await using var dataSource = NpgsqlDataSource.Create(await postgres.CreateDatabaseAsync());

        // Silos starting together race to migrate: the advisory lock makes them take turns.
        await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Schema(dataSource).MigrateAsync(CancellationToken.None)));
        await Schema(dataSource).MigrateAsync(CancellationToken.None);

        var applied = await ReadColumnAsync(dataSource, "SELECT name FROM iot_schema_migrations");
        Assert.Equal(PostgresSchema.Scripts().Count, applied.Count);
    }

    [Fact]
    public async Task EveryScript_IsIdempotentOnItsOwn()
    {
        // Operators may apply deploy/postgres/*.sql by hand before the silo does: applying again must not fail.
        await using var dataSource = NpgsqlDataSource.Create(await postgres.CreateDatabaseAsync());
        foreach (var (_, _, sql) in PostgresSchema.Scripts())
        {
            for (var i = 0; i < 2; i++)
            {
                await using var command = dataSource.CreateCommand(sql);
                await command.ExecuteNonQueryAsync();
            }
        }
    }

    [Fact]
    public async Task WriteToStorage_FollowsTheEtagContract()
    {
        await using var dataSource = NpgsqlDataSource.Create(await postgres.CreateDatabaseAsync());
        await Schema(dataSource).MigrateAsync(CancellationToken.None);
        var write = await QueryTextAsync(dataSource, "WriteToStorageKey");

        Assert.Equal(1, await WriteAsync(dataSource, write, version: null, "a"u8.ToArray()));      // first insert
        Assert.Null(await WriteAsync(dataSource, write, version: null, "b"u8.ToArray()));          // second insert loses
        Assert.Null(await WriteAsync(dataSource, write, version: 5, "c"u8.ToArray()));             // stale etag
        Assert.Equal(2, await WriteAsync(dataSource, write, version: 1, "d"u8.ToArray()));         // update

        var read = await QueryTextAsync(dataSource, "ReadFromStorageKey");
        await using var command = StorageCommand(dataSource, read);
        await using var reader = await command.ExecuteReaderAsync();
        Assert.True(await reader.ReadAsync());
        Assert.Equal("d"u8.ToArray(), (byte[])reader["payloadbinary"]);
        Assert.Equal(2, reader.GetInt32(reader.GetOrdinal("version")));
        Assert.False(await reader.ReadAsync());
    }

    private static async Task<int?> WriteAsync(NpgsqlDataSource dataSource, string sql, int? version, byte[] payload)
    {
        await using var command = StorageCommand(dataSource, sql);
        command.Parameters.Add(new NpgsqlParameter("GrainStateVersion", System.Data.DbType.Int32) { Value = (object?)version ?? DBNull.Value });
        command.Parameters.Add(new NpgsqlParameter("PayloadBinary", System.Data.DbType.Binary) { Value = payload });
        var result = await command.ExecuteScalarAsync();
        return result is null or DBNull ? null : Convert.ToInt32(result, System.Globalization.CultureInfo.InvariantCulture);
    }

    private static NpgsqlCommand StorageCommand(NpgsqlDataSource dataSource, string sql)
    {
        // The seven key parameters exactly as the Orleans provider binds them (a string-keyed grain).
        var command = dataSource.CreateCommand(sql);
        command.Parameters.Add(new NpgsqlParameter("GrainIdHash", System.Data.DbType.Int32) { Value = 42 });
        command.Parameters.Add(new NpgsqlParameter("GrainIdN0", System.Data.DbType.Int64) { Value = 0L });
        command.Parameters.Add(new NpgsqlParameter("GrainIdN1", System.Data.DbType.Int64) { Value = 0L });
        command.Parameters.Add(new NpgsqlParameter("GrainTypeHash", System.Data.DbType.Int32) { Value = 7 });
        command.Parameters.Add(new NpgsqlParameter("GrainTypeString", System.Data.DbType.String) { Value = "thing" });
        command.Parameters.Add(new NpgsqlParameter("GrainIdExtensionString", System.Data.DbType.String) { Value = "device-1" });
        command.Parameters.Add(new NpgsqlParameter("ServiceId", System.Data.DbType.String) { Value = "svc" });
        return command;
    }

    private static async Task<string> QueryTextAsync(NpgsqlDataSource dataSource, string key)
    {
        await using var command = dataSource.CreateCommand("SELECT querytext FROM orleansquery WHERE querykey = @key");
        command.Parameters.AddWithValue("key", key);
        return (string)(await command.ExecuteScalarAsync())!;
    }

    private static async Task<List<string>> ReadColumnAsync(NpgsqlDataSource dataSource, string sql)
    {
        var values = new List<string>();
        await using var command = dataSource.CreateCommand(sql);
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            values.Add(reader.GetString(0));
        }

        return values;
    }
}
