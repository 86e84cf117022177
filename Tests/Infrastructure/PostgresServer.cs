using System.Diagnostics;
using Npgsql;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// A PostgreSQL server for the tests: the one named by <c>IOT_TEST_POSTGRES</c> (a connection string of a role
/// that may create databases), or else a throwaway server started from the installed binaries (temporary data
/// directory, free port, run as the postgres user when the tests run as root) and removed afterwards. There is no
/// skipping: without PostgreSQL these tests fail and say how to get it.
/// </summary>
public sealed class PostgresServer : IAsyncLifetime
{
    private string? _dataRoot;
    private string? _binDir;
    private string _adminConnectionString = "";

    public async Task InitializeAsync()
    {
        var configured = Environment.GetEnvironmentVariable("IOT_TEST_POSTGRES");
        if (!string.IsNullOrWhiteSpace(configured))
        {
            _adminConnectionString = configured;
            return;
        }

        _binDir = FindBinaries() ?? throw new InvalidOperationException(
            "PostgreSQL tests need a server: set IOT_TEST_POSTGRES to a connection string, or install the server binaries (Debian: apt-get install -y postgresql).");
        var port = FreePorts.Next();
        _dataRoot = Directory.CreateTempSubdirectory("orleansiot-pg-").FullName;
        var asRoot = Environment.UserName == "root";
        if (asRoot)
        {
            await RunAsync("chown", "postgres", _dataRoot);
        }

        var data = Path.Combine(_dataRoot, "data");
        await RunAsOwnerAsync(asRoot, Path.Combine(_binDir, "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync");
        await RunAsOwnerAsync(asRoot, Path.Combine(_binDir, "pg_ctl"), "-D", data, "-l", Path.Combine(_dataRoot, "server.log"), "-w", "-o",
            $"-p {port} -k {_dataRoot} -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off", "start");
        _adminConnectionString = $"Host=127.0.0.1;Port={port};Username=postgres;Database=postgres;Pooling=false";
    }

    public async Task DisposeAsync()
    {
        if (_dataRoot is null || _binDir is null)
        {
            return;
        }

        await RunAsOwnerAsync(Environment.UserName == "root", Path.Combine(_binDir, "pg_ctl"), "-D", Path.Combine(_dataRoot, "data"), "-m", "immediate", "-w", "stop");
        Directory.Delete(_dataRoot, recursive: true);
    }

    /// <summary>Creates an empty database for one test and returns its connection string.</summary>
    public async Task<string> CreateDatabaseAsync(string prefix = "iot")
    {
        var name = $"{prefix}_{Guid.NewGuid():N}"[..Math.Min(prefix.Length + 33, 63)];
        await using (var connection = new NpgsqlConnection(_adminConnectionString))
        {
            await connection.OpenAsync();
            await using var command = new NpgsqlCommand($"CREATE DATABASE \"{name}\"", connection);
            await command.ExecuteNonQueryAsync();
        }

        return new NpgsqlConnectionStringBuilder(_adminConnectionString) { Database = name, Pooling = true }.ConnectionString;
    }

    /// <summary>
    /// Backs a database up and restores it into another, with the commands deploy/README.md gives operators:
    /// <c>pg_dump --format=custom --no-owner</c>, then <c>pg_restore --no-owner</c> into an empty database.
    /// </summary>
    public async Task DumpAndRestoreAsync(string sourceConnectionString, string targetConnectionString, string dumpFile)
    {
        var source = new NpgsqlConnectionStringBuilder(sourceConnectionString);
        var target = new NpgsqlConnectionStringBuilder(targetConnectionString);
        await RunAsync(Path.Combine(_binDir!, "pg_dump"), "--format=custom", "--no-owner", "-h", source.Host!, "-p", source.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-U", source.Username!, "-d", source.Database!, "-f", dumpFile);
        await RunAsync(Path.Combine(_binDir!, "pg_restore"), "--no-owner", "--exit-on-error", "-h", target.Host!, "-p", target.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            "-U", target.Username!, "-d", target.Database!, dumpFile);
    }

    /// <summary>A data source on a new database with our schema applied (what every store test starts from).</summary>
    public async Task<NpgsqlDataSource> CreateMigratedDataSourceAsync(string prefix = "iot")
    {
        var dataSource = NpgsqlDataSource.Create(await CreateDatabaseAsync(prefix));
        await new OrleansIot.Silo.Storage.PostgresSchema(dataSource, Microsoft.Extensions.Logging.Abstractions.NullLogger<OrleansIot.Silo.Storage.PostgresSchema>.Instance)
            .MigrateAsync(CancellationToken.None);
        return dataSource;
    }

    private static string? FindBinaries()
    {
        const string Root = "/usr/lib/postgresql";
        if (Directory.Exists(Root))
        {
            var newest = Directory.GetDirectories(Root)
                .Select(d => Path.Combine(d, "bin"))
                .Where(d => File.Exists(Path.Combine(d, "pg_ctl")))
                .OrderByDescending(d => int.TryParse(Path.GetFileName(Path.GetDirectoryName(d)), out var v) ? v : 0)
                .FirstOrDefault();
            if (newest is not null)
            {
                return newest;
            }
        }

        var path = Environment.GetEnvironmentVariable("PATH")?.Split(':').FirstOrDefault(d => File.Exists(Path.Combine(d, "pg_ctl")));
        return path;
    }

    private static Task RunAsOwnerAsync(bool asRoot, string file, params string[] args) =>
        asRoot ? RunAsync("runuser", ["-u", "postgres", "--", file, .. args]) : RunAsync(file, args);

    private static async Task RunAsync(string file, params string[] args)
    {
        var start = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        using var process = Process.Start(start)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"{file} {string.Join(' ', args)} exited with {process.ExitCode}: {await stdout} {await stderr}");
        }
    }
}

[CollectionDefinition(Name)]
public sealed class PostgresCollection : ICollectionFixture<PostgresServer>
{
    public const string Name = "postgres";
}
