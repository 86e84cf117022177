using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace OrleansIot.Grains.Abstractions;

/// <summary>How every settings class of the node is registered: bound from its section, checked by its data annotations at start.</summary>
public static class ValidatedOptions
{
    /// <summary>
    /// Binds <typeparamref name="T"/> to the configuration section and checks it when the host starts, so a bad value
    /// stops the node with a message naming the setting instead of failing on first use.
    /// </summary>
    public static OptionsBuilder<T> AddValidatedOptions<T>(this IServiceCollection services, string sectionName) where T : class =>
        services.AddOptions<T>().BindConfiguration(sectionName).ValidateDataAnnotations().ValidateOnStart();
}
