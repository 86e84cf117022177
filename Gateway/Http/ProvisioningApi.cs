using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Provisioning;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Fleet provisioning templates with AWS's paths and fields: <c>POST /api/provisioning-templates</c>
/// (<c>templateName</c>, <c>templateBody</c>, <c>enabled</c>, <c>description</c>, <c>provisioningRoleArn</c>),
/// <c>GET|PATCH|DELETE /api/provisioning-templates/{templateName}</c>, <c>GET /api/provisioning-templates</c>.
/// Devices use a template over MQTT (<c>$aws/provisioning-templates/{templateName}/provision/json</c>).
/// </summary>
public static class ProvisioningApi
{
    public static IEndpointRouteBuilder MapProvisioningApi(this IEndpointRouteBuilder endpoints)
    {
        var api = endpoints.MapGroup("/provisioning-templates").WithTags("Provisioning").ChangedBy(ApiKeyRoles.Admin);
        api.MapPost("", CreateAsync).WithName("CreateProvisioningTemplate");
        api.MapGet("/{templateName}", DescribeAsync).WithName("DescribeProvisioningTemplate");
        api.MapGet("", ListAsync).WithName("ListProvisioningTemplates");
        api.MapPatch("/{templateName}", UpdateAsync).WithName("UpdateProvisioningTemplate");
        api.MapDelete("/{templateName}", DeleteAsync).WithName("DeleteProvisioningTemplate");
        return endpoints;
    }

    public sealed record CreateTemplateBody(string? TemplateName, string? TemplateBody, bool? Enabled, string? Description, string? ProvisioningRoleArn);

    public sealed record UpdateTemplateBody(string? TemplateBody, bool? Enabled, string? Description);

    public sealed record CreateTemplateResponse(string TemplateArn, string TemplateName, int DefaultVersionId);

    public sealed record DescribeTemplateResponse(
        string TemplateArn, string TemplateName, string? Description, long CreationDate, long LastModifiedDate, int DefaultVersionId,
        string TemplateBody, bool Enabled, string? ProvisioningRoleArn, string Type);

    public sealed record TemplateSummary(string TemplateArn, string TemplateName, string? Description, bool Enabled, long CreationDate, long LastModifiedDate, string Type);

    public sealed record ListTemplatesResponse(IReadOnlyList<TemplateSummary> Templates);

    private const string FleetProvisioning = "FLEET_PROVISIONING";

    private static async Task<Ok<CreateTemplateResponse>> CreateAsync(CreateTemplateBody body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context)
    {
        var name = body.TemplateName is { Length: > 0 } given ? given : throw ApiException.Invalid("templateName is required (1 to 36 of [0-9A-Za-z_-]).");
        AuditApi.Target(context, $"templateName={name}");
        var info = await grains.GetGrain<IProvisioningTemplateGrain>(name).Create(
            body.TemplateBody is { Length: > 0 } template ? template : throw ApiException.Invalid("templateBody is required (the template as a JSON string)."),
            body.Enabled == true,
            body.Description,
            body.ProvisioningRoleArn);
        return TypedResults.Ok(new CreateTemplateResponse(Arn(o, name), name, info.DefaultVersionId));
    }

    private static async Task<Ok<DescribeTemplateResponse>> DescribeAsync(string templateName, IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var t = await grains.GetGrain<IProvisioningTemplateGrain>(templateName).Describe()
            ?? throw ApiException.NotFound($"Provisioning template {templateName} cannot be found.");
        return TypedResults.Ok(new DescribeTemplateResponse(
            Arn(o, t.TemplateName), t.TemplateName, t.Description, t.CreationDate.ToUnixTimeSeconds(), t.LastModifiedDate.ToUnixTimeSeconds(),
            t.DefaultVersionId, t.TemplateBody, t.Enabled, t.ProvisioningRoleArn, FleetProvisioning));
    }

    private static async Task<Ok<ListTemplatesResponse>> ListAsync(IGrainFactory grains, IOptions<RegistryOptions> o)
    {
        var templates = await grains.GetGrain<IFleetProvisioningGrain>(0).ListTemplates();
        return TypedResults.Ok(new ListTemplatesResponse([.. templates.Select(t => new TemplateSummary(
            Arn(o, t.TemplateName), t.TemplateName, t.Description, t.Enabled, t.CreationDate.ToUnixTimeSeconds(), t.LastModifiedDate.ToUnixTimeSeconds(), FleetProvisioning))]));
    }

    private static async Task<Ok<EmptyResponse>> UpdateAsync(string templateName, UpdateTemplateBody body, IGrainFactory grains)
    {
        await grains.GetGrain<IProvisioningTemplateGrain>(templateName).Update(body.TemplateBody, body.Enabled, body.Description);
        return EmptyResponse.Ok;
    }

    private static async Task<Ok<EmptyResponse>> DeleteAsync(string templateName, IGrainFactory grains)
    {
        await grains.GetGrain<IProvisioningTemplateGrain>(templateName).Delete();
        return EmptyResponse.Ok;
    }

    private static string Arn(IOptions<RegistryOptions> o, string name) => o.Value.Arn($"provisioningtemplate/{name}");
}
