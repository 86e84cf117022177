namespace OrleansIot.Grains.Abstractions.Rules;

/// <summary>A rule's SQL tried on one message (AWS IoT SQL 2016-03-23), for people writing rules.</summary>
/// <param name="Sql">The statement.</param>
/// <param name="Topic">The topic the message arrived on.</param>
/// <param name="Payload">The message payload (JSON or any bytes).</param>
/// <param name="ClientId">What <c>clientid()</c> returns.</param>
/// <param name="Principal">What <c>principal()</c> returns.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.RuleTestRequest")]
public sealed record RuleTestRequest(
    [property: Id(0)] string Sql,
    [property: Id(1)] string Topic,
    [property: Id(2)] byte[] Payload,
    [property: Id(3)] string? ClientId,
    [property: Id(4)] string? Principal);

/// <summary>
/// The outcome: a syntax error (<see cref="Error"/> with the 0-based <see cref="ErrorPosition"/>), or whether the FROM
/// filter matches the topic, whether WHERE let the message through, and the output the actions would get.
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.RuleTestResult")]
public sealed record RuleTestResult(
    [property: Id(0)] bool TopicMatches,
    [property: Id(1)] bool Selected,
    [property: Id(2)] byte[]? Output,
    [property: Id(3)] string? Error,
    [property: Id(4)] int? ErrorPosition);

/// <summary>Evaluates rule SQL without a rule (stateless: any silo answers).</summary>
[Alias("OrleansIot.IRuleSqlGrain")]
public interface IRuleSqlGrain : IGrainWithIntegerKey
{
    /// <summary>Parses, compiles and runs the statement on the message.</summary>
    [Alias("Test")]
    Task<RuleTestResult> Test(RuleTestRequest request);
}
