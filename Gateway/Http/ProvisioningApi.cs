using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
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
        var api = endpoints.MapGroup("/api/provisioning-templates").WithTags("Provisioning").ChangedBy(ApiKeyRoles.Admin);
        api.MapPost("", async (JsonObject body, IGrainFactory grains, IOptions<RegistryOptions> o, HttpContext context) =>
        {
            var name = JsonText.Required(body, "templateName", "1 to 36 of [0-9A-Za-z_-]");
            AuditApi.Target(context, $"templateName={name}");
            var info = await grains.GetGrain<IProvisioningTemplateGrain>(name).Create(
                JsonText.Required(body, "templateBody", "the template as a JSON string"),
                JsonText.Flag(body, "enabled") == true,
                JsonText.Field(body, "description"),
                JsonText.Field(body, "provisioningRoleArn"));
            return JsonText.Result(new JsonObject { ["templateArn"] = Arn(o, name), ["templateName"] = name, ["defaultVersionId"] = info.DefaultVersionId });
        }).WithName("CreateProvisioningTemplate");
        api.MapGet("/{templateName}", async (string templateName, IGrainFactory grains, IOptions<RegistryOptions> o) =>
            await grains.GetGrain<IProvisioningTemplateGrain>(templateName).Describe() is { } info
                ? JsonText.Result(Describe(o, info))
                : throw ApiException.NotFound($"Provisioning template {templateName} cannot be found."))
            .WithName("DescribeProvisioningTemplate");
        api.MapGet("", async (IGrainFactory grains, IOptions<RegistryOptions> o) =>
        {
            var templates = await grains.GetGrain<IFleetProvisioningGrain>(0).ListTemplates();
            return JsonText.Result(new JsonObject
            {
                ["templates"] = new JsonArray([.. templates.Select(t => (JsonNode)new JsonObject
                {
                    ["templateArn"] = Arn(o, t.TemplateName),
                    ["templateName"] = t.TemplateName,
                    ["description"] = t.Description,
                    ["enabled"] = t.Enabled,
                    ["creationDate"] = t.CreationDate.ToUnixTimeSeconds(),
                    ["lastModifiedDate"] = t.LastModifiedDate.ToUnixTimeSeconds(),
                    ["type"] = "FLEET_PROVISIONING",
                })]),
            });
        }).WithName("ListProvisioningTemplates");
        api.MapPatch("/{templateName}", async (string templateName, JsonObject body, IGrainFactory grains) =>
        {
            await grains.GetGrain<IProvisioningTemplateGrain>(templateName).Update(
                JsonText.Field(body, "templateBody"), JsonText.Flag(body, "enabled"), JsonText.Field(body, "description"));
            return TypedResults.Ok(new { });
        }).WithName("UpdateProvisioningTemplate");
        api.MapDelete("/{templateName}", async (string templateName, IGrainFactory grains) =>
        {
            await grains.GetGrain<IProvisioningTemplateGrain>(templateName).Delete();
            return TypedResults.Ok(new { });
        }).WithName("DeleteProvisioningTemplate");
        return endpoints;
    }

    private static string Arn(IOptions<RegistryOptions> o, string name) => o.Value.Arn($"provisioningtemplate/{name}");

    private static JsonObject Describe(IOptions<RegistryOptions> o, ProvisioningTemplateInfo t) => new()
    {
        ["templateArn"] = Arn(o, t.TemplateName),
        ["templateName"] = t.TemplateName,
        ["description"] = t.Description,
        ["creationDate"] = t.CreationDate.ToUnixTimeSeconds(),
        ["lastModifiedDate"] = t.LastModifiedDate.ToUnixTimeSeconds(),
        ["defaultVersionId"] = t.DefaultVersionId,
        ["templateBody"] = t.TemplateBody,
        ["enabled"] = t.Enabled,
        ["provisioningRoleArn"] = t.ProvisioningRoleArn,
        ["type"] = "FLEET_PROVISIONING",
    };
}
