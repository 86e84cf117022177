namespace OrleansIot.Grains.Abstractions.Audit;

/// <summary>
/// One audited control-plane call (our CloudTrail event): who, what, on what, when, from where, and how it ended.
/// Never a request body, so never a secret.
/// </summary>
/// <param name="Time">When the call was answered.</param>
/// <param name="Principal">Who made it (an API key id once keys exist; "anonymous" before).</param>
/// <param name="Operation">AWS's operation name (<c>CreateTopicRule</c>, <c>UpdateCertificate</c> …).</param>
/// <param name="Target">The resource, from the path (<c>ruleName=hot_rooms</c>).</param>
/// <param name="SourceAddress">The caller's address.</param>
/// <param name="Status">The HTTP status it was answered with.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.AuditRecord")]
public sealed record AuditRecord(
    [property: Id(0)] DateTimeOffset Time,
    [property: Id(1)] string Principal,
    [property: Id(2)] string Operation,
    [property: Id(3)] string Target,
    [property: Id(4)] string SourceAddress,
    [property: Id(5)] int Status);

/// <summary>A page of audit records, newest first, and where the next page starts.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.AuditPage")]
public sealed record AuditPage(
    [property: Id(0)] IReadOnlyList<AuditRecord> Records,
    [property: Id(1)] string? NextToken);

/// <summary>The audit log; any node answers.</summary>
[Alias("OrleansIot.IAuditGrain")]
public interface IAuditGrain : IGrainWithIntegerKey
{
    /// <summary>Appends records.</summary>
    [Alias("Record")]
    Task Record(IReadOnlyList<AuditRecord> records);

    /// <summary>Records between <paramref name="from"/> and <paramref name="to"/>, optionally of one operation and principal, newest first.</summary>
    [Alias("Query")]
    Task<AuditPage> Query(DateTimeOffset from, DateTimeOffset to, string? operation, string? principal, string? nextToken, int maxResults);
}
