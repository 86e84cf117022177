using Microsoft.Extensions.Logging;
using OrleansIot.Grains.Abstractions.Audit;

namespace OrleansIot.Gateway.Security;

/// <summary>
/// Writes audit records without holding up the caller (after the answer): API calls, and the identity changes devices
/// cause over MQTT (JITR registrations, fleet provisioning). A record that cannot be written is logged as an error.
/// </summary>
public sealed partial class AuditTrail(IGrainFactory grains, TimeProvider time, ILogger<AuditTrail> logger)
{
    /// <summary>Records one call; never throws.</summary>
    public void Record(string principal, string operation, string target, string? source, int status) =>
        _ = WriteAsync(new AuditRecord(time.GetUtcNow(), principal, operation, target, source ?? "", status));

    private async Task WriteAsync(AuditRecord record)
    {
        try
        {
            await grains.GetGrain<IAuditGrain>(0).Record([record]);
        }
        catch (Exception ex)
        {
            LogAuditFailed(logger, ex, record.Operation, record.Target);
        }
    }

    [LoggerMessage(EventId = 1043, Level = LogLevel.Error, Message = "Could not write the audit record of {Operation} on {Target}")]
    private static partial void LogAuditFailed(ILogger logger, Exception exception, string operation, string target);
}
