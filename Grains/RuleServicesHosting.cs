using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Grains.Registry;
using OrleansIot.Grains.Shadows;

namespace OrleansIot.Grains;

/// <summary>Services the rules engine needs on every silo, whatever the storage.</summary>
public static class RuleServicesHosting
{
    /// <summary>Registers the http action's sender.</summary>
    public static IServiceCollection AddIotRules(this IServiceCollection services)
    {
        services.AddSingleton<Rules.HttpActionDispatcher>();
        services.AddSingleton<Rules.ActionFailureLog>();
        return services;
    }
}
