using Microsoft.Extensions.Diagnostics.HealthChecks;
using Npgsql;

namespace OrleansIot.Silo.Hosting;

/// <summary>Ready: this silo is an active member of its cluster (it joined, and is not shutting down or declared dead).</summary>
internal sealed class ClusterMembershipCheck(IClusterMembershipService membership, ILocalSiloDetails local) : IHealthCheck
{
    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        var snapshot = membership.CurrentSnapshot;
        var status = snapshot.GetSiloStatus(local.SiloAddress);
        var active = snapshot.Members.Values.Count(m => m.Status == SiloStatus.Active);
        return Task.FromResult(status == SiloStatus.Active
            ? HealthCheckResult.Healthy($"active, one of {active} active silos")
            : HealthCheckResult.Unhealthy($"this silo is {status} in the cluster"));
    }
}

/// <summary>Ready: PostgreSQL answers a query within the check's time (2 s).</summary>
internal sealed class PostgresReachableCheck(NpgsqlDataSource dataSource) : IHealthCheck
{
    private static readonly TimeSpan Limit = TimeSpan.FromSeconds(2);

    public async Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        timeout.CancelAfter(Limit);
        try
        {
            await using var command = dataSource.CreateCommand("SELECT 1");
            await command.ExecuteScalarAsync(timeout.Token);
            return HealthCheckResult.Healthy("PostgreSQL answers");
        }
        catch (Exception ex) when (ex is NpgsqlException or OperationCanceledException or TimeoutException)
        {
            return HealthCheckResult.Unhealthy(timeout.IsCancellationRequested && !cancellationToken.IsCancellationRequested
                ? $"PostgreSQL did not answer within {Limit.TotalSeconds:0} s"
                : $"PostgreSQL cannot be reached: {ex.Message}");
        }
    }
}
