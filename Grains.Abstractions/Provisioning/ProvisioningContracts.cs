namespace OrleansIot.Grains.Abstractions.Provisioning;

/// <summary>A fleet provisioning template (AWS <c>DescribeProvisioningTemplate</c>).</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ProvisioningTemplateInfo")]
public sealed record ProvisioningTemplateInfo(
    [property: Id(0)] string TemplateName,
    [property: Id(1)] string TemplateBody,
    [property: Id(2)] bool Enabled,
    [property: Id(3)] string? Description,
    [property: Id(4)] string? ProvisioningRoleArn,
    [property: Id(5)] DateTimeOffset CreationDate,
    [property: Id(6)] DateTimeOffset LastModifiedDate,
    [property: Id(7)] int DefaultVersionId);

/// <summary>One provisioning template (key: its name). Bodies are validated when stored.</summary>
[Alias("OrleansIot.IProvisioningTemplateGrain")]
public interface IProvisioningTemplateGrain : IGrainWithStringKey
{
    /// <summary>AWS <c>CreateProvisioningTemplate</c>; <c>ResourceAlreadyExistsException</c> if it exists.</summary>
    [Alias("Create")]
    Task<ProvisioningTemplateInfo> Create(string templateBody, bool enabled, string? description, string? provisioningRoleArn);

    /// <summary>The template, or null.</summary>
    [Alias("Describe"), Orleans.Concurrency.ReadOnly]
    Task<ProvisioningTemplateInfo?> Describe();

    /// <summary>AWS <c>UpdateProvisioningTemplate</c>: enabled, description, and (our shortcut for a new default version) the body.</summary>
    [Alias("Update")]
    Task<ProvisioningTemplateInfo> Update(string? templateBody, bool? enabled, string? description);

    /// <summary>AWS <c>DeleteProvisioningTemplate</c>.</summary>
    [Alias("Delete")]
    Task Delete();
}

/// <summary>The answer on a fleet provisioning <c>/accepted</c> or <c>/rejected</c> topic.</summary>
[GenerateSerializer, Immutable, Alias("OrleansIot.ProvisioningAnswer")]
public sealed record ProvisioningAnswer(
    [property: Id(0)] bool Accepted,
    [property: Id(1)] string Document);

/// <summary>
/// Fleet provisioning by claim (the MQTT API a device with a claim certificate calls): new certificates made
/// PENDING_ACTIVATION with an ownership token valid one hour, and RegisterThing running a template. Answers are AWS's
/// accepted or rejected documents (<c>{"statusCode","errorCode","errorMessage"}</c>).
/// </summary>
[Alias("OrleansIot.IFleetProvisioningGrain")]
public interface IFleetProvisioningGrain : IGrainWithIntegerKey
{
    /// <summary>AWS <c>ListProvisioningTemplates</c>, by name.</summary>
    [Alias("ListTemplates")]
    Task<IReadOnlyList<ProvisioningTemplateInfo>> ListTemplates();

    /// <summary><c>$aws/certificates/create/json</c>: a key pair and certificate (the key in the answer only).</summary>
    [Alias("CreateKeysAndCertificate")]
    Task<ProvisioningAnswer> CreateKeysAndCertificate();

    /// <summary><c>$aws/certificates/create-from-csr/json</c> with <c>{"certificateSigningRequest"}</c>.</summary>
    [Alias("CreateCertificateFromCsr")]
    Task<ProvisioningAnswer> CreateCertificateFromCsr(byte[] request);

    /// <summary><c>$aws/provisioning-templates/{templateName}/provision/json</c> with <c>{"certificateOwnershipToken","parameters"}</c>.</summary>
    [Alias("RegisterThing")]
    Task<ProvisioningAnswer> RegisterThing(string templateName, byte[] request);

    /// <summary>
    /// JITP: runs a CA's template for a device certificate it signed (PENDING_ACTIVATION, just registered on the
    /// device's first connection), with the built-in parameters read from the certificate; ACTIVE when it succeeds.
    /// <paramref name="templateName"/> names the policies made from documents.
    /// </summary>
    [Alias("ProvisionJustInTime")]
    Task<ProvisioningAnswer> ProvisionJustInTime(string certificatePem, string templateName, string templateBody);
}
