namespace OrleansIot.Grains.Abstractions.Shadows;

/// <summary>Who asked, which decides what is published besides the state-change notifications.</summary>
public enum ShadowChannel
{
    /// <summary>
    /// A device or application over MQTT: the answer goes to the <c>/accepted</c> or <c>/rejected</c> topic as AWS
    /// does, and the returned <see cref="ShadowResponse"/> is for the gateway only.
    /// </summary>
    Mqtt = 0,

    /// <summary>
    /// The HTTP data plane or a backend service: the answer is the returned <see cref="ShadowResponse"/>; only state
    /// changes are published (<c>/update/accepted</c>, <c>/update/documents</c>, <c>/update/delta</c>,
    /// <c>/delete/accepted</c>), never <c>/rejected</c> or <c>/get/accepted</c> (AWS: "no MQTT error messages are
    /// emitted" for the REST API).
    /// </summary>
    Api = 1,
}

/// <summary>A shadow request as AWS devices send it: the payload is the JSON request document, unparsed.</summary>
/// <param name="ShadowName">The named shadow, or <c>null</c> for the classic shadow.</param>
/// <param name="Payload">The request document (UTF-8 JSON); may be empty for get and delete.</param>
/// <param name="Channel">Where the answer goes.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.ShadowRequest")]
public sealed record ShadowRequest(
    [property: Id(0)] string? ShadowName,
    [property: Id(1)] byte[] Payload,
    [property: Id(2)] ShadowChannel Channel);

/// <summary>
/// The answer to a shadow request: <see cref="Code"/> 200 with the accepted document (the same bytes AWS publishes
/// on <c>/accepted</c>), or an AWS error code with AWS's error document
/// (<c>{"code":409,"message":"Version conflict","timestamp":…,"clientToken":…}</c>).
/// </summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ShadowResponse")]
public sealed record ShadowResponse(
    [property: Id(0)] int Code,
    [property: Id(1)] byte[] Document)
{
    /// <summary>True for an accepted request.</summary>
    public bool IsAccepted => Code == 200;

    /// <summary>The document as text.</summary>
    public string DocumentText => System.Text.Encoding.UTF8.GetString(Document);
}

/// <summary>A page of a thing's named shadows (AWS <c>ListNamedShadowsForThing</c>).</summary>
/// <param name="Results">Shadow names in ordinal order; the classic shadow is never listed.</param>
/// <param name="NextToken">Pass back for the next page; <c>null</c> on the last page.</param>
[GenerateSerializer, Immutable, Alias("OrleansIot.NamedShadowPage")]
public sealed record NamedShadowPage(
    [property: Id(0)] IReadOnlyList<string> Results,
    [property: Id(1)] string? NextToken);
