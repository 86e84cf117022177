using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Abstractions.Provisioning;

namespace OrleansIot.Grains.Provisioning;

/// <summary>A CA's JITP template (<see cref="RegistrationConfig"/>): checked when set, read when a device first connects.</summary>
internal static class RegistrationConfigs
{
    /// <summary>A body must parse; a name must be a provisioning template; not both.</summary>
    public static async Task CheckAsync(RegistrationConfig? config, IGrainFactory grains)
    {
        if (config is null)
        {
            return;
        }

        if (config.TemplateBody is not null && config.TemplateName is not null)
        {
            throw ApiException.Invalid("registrationConfig takes templateBody or templateName, not both.");
        }

        if (config.TemplateBody is { } body)
        {
            ProvisioningTemplate.Parse(body);
        }
        else if (config.TemplateName is { } name && await grains.GetGrain<IProvisioningTemplateGrain>(name).Describe() is null)
        {
            throw ApiException.NotFound($"Provisioning template {name} cannot be found.");
        }
    }

    /// <summary>The template to run for a CA's device, as (name for the policies it makes, body); null when there is none.</summary>
    public static async Task<(string Name, string Body)?> TemplateAsync(RegistrationConfig? config, string caCertificateId, IGrainFactory grains)
    {
        if (config?.TemplateBody is { } body)
        {
            return ($"jitp-{caCertificateId[..12]}", body);
        }

        if (config?.TemplateName is { } name && await grains.GetGrain<IProvisioningTemplateGrain>(name).Describe() is { } template)
        {
            return (name, template.TemplateBody);
        }

        return null;
    }
}
