using System.ComponentModel.DataAnnotations;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace OrleansIot.Gateway.Hosting;

/// <summary>
/// Binds and validates a settings section eagerly, for the settings needed before the host is built (ports,
/// storage mode). A bad value stops the silo at start with a message that names the full key.
/// </summary>
public static class Settings
{
    public static T Bind<T>(IConfiguration configuration, string sectionName) where T : class, new()
    {
        ArgumentNullException.ThrowIfNull(configuration);
        var section = configuration.GetSection(sectionName);
        T value;
        try
        {
            value = section.Get<T>() ?? new T();
        }
        catch (InvalidOperationException ex)
        {
            // The binder's message names the key ("Failed to convert configuration value at 'Iot:Mqtt:Port' ...").
            throw new OptionsValidationException(sectionName, typeof(T), [ex.InnerException is null ? ex.Message : $"{ex.Message} {ex.InnerException.Message}"]);
        }

        Validate(value, sectionName);
        return value;
    }

    public static void Validate<T>(T value, string sectionName) where T : class
    {
        var results = new List<ValidationResult>();
        if (!Validator.TryValidateObject(value, new ValidationContext(value), results, validateAllProperties: true))
        {
            var failures = results.Select(r => $"{sectionName}:{string.Join(",", r.MemberNames)}: {r.ErrorMessage}").ToList();
            throw new OptionsValidationException(sectionName, typeof(T), failures);
        }
    }
}
