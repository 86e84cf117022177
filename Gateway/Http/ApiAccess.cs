using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Authorization.Policy;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Gateway.Security;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// What a caller may do, decided from the endpoint's own metadata: each API declares who may change what it serves
/// (<see cref="ChangedBy{TBuilder}"/>: operator or admin); reads (GET, and the POSTs marked <see cref="ReadOnly{TBuilder}"/>,
/// as AWS has them) need any key. Readers read; operators also change things, shadows, rules, queues and connections;
/// admins also identity and access (certificates, CAs, policies, provisioning, API keys). A device's certificate may
/// call only endpoints that name what that call is in AWS's policy language (<see cref="DeviceAccess"/>), and only
/// as its policies allow. Every refusal is written here, once: 401 <c>UnauthorizedException</c> (or the SigV4
/// error), 403 <c>AccessDeniedException</c>, as problem+json with <c>x-amzn-ErrorType</c>.
/// </summary>
public static class ApiAccess
{
    private const string ReaderPolicy = "iot.reader";
    private const string OperatorPolicy = "iot.operator";
    private const string AdminPolicy = "iot.admin";

    internal static IServiceCollection AddApiAccess(this IServiceCollection services)
    {
        services.AddApiAuthentication();
        services.AddAuthorizationBuilder()
            .AddPolicy(ReaderPolicy, p => p.AddRequirements(new RoleRequirement(ApiKeyRoles.Reader)))
            .AddPolicy(OperatorPolicy, p => p.AddRequirements(new RoleRequirement(ApiKeyRoles.Operator)))
            .AddPolicy(AdminPolicy, p => p.AddRequirements(new RoleRequirement(ApiKeyRoles.Admin)));
        services.AddSingleton<IAuthorizationHandler, RoleHandler>();
        services.AddSingleton<IAuthorizationMiddlewareResultHandler, RefusalWriter>();
        return services;
    }

    /// <summary>
    /// Every endpoint of the builder needs a caller: changes the given role (or admin), reads any role. Applied last,
    /// so an endpoint's own <see cref="ReadOnly{TBuilder}"/> counts.
    /// </summary>
    public static TBuilder ChangedBy<TBuilder>(this TBuilder builder, string role) where TBuilder : IEndpointConventionBuilder
    {
        ArgumentNullException.ThrowIfNull(builder);
        var changes = role switch
        {
            ApiKeyRoles.Operator => OperatorPolicy,
            ApiKeyRoles.Admin => AdminPolicy,
            _ => throw new ArgumentOutOfRangeException(nameof(role), role, "changes are made by operators or admins"),
        };
        builder.Finally(endpoint =>
        {
            var methods = endpoint.Metadata.OfType<HttpMethodMetadata>().SelectMany(m => m.HttpMethods).ToList();
            var reads = endpoint.Metadata.OfType<ReadOnlyCall>().Any() || (methods.Count > 0 && methods.All(m => HttpMethods.IsGet(m) || HttpMethods.IsHead(m)));
            endpoint.Metadata.Add(new AuthorizeAttribute(reads ? ReaderPolicy : changes));
        });
        return builder;
    }

    /// <summary>A POST that only reads (AWS uses POST for some reads): any role may call it, and it is not audited.</summary>
    public static TBuilder ReadOnly<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(ReadOnlyCall.Instance);

    /// <summary>Whether an endpoint only reads (GET, HEAD, or marked <see cref="ReadOnly{TBuilder}"/>).</summary>
    public static bool IsRead(Endpoint endpoint, string method) =>
        HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || endpoint.Metadata.GetMetadata<ReadOnlyCall>() is not null;

    /// <summary>Marks an endpoint that only reads although it is a POST.</summary>
    public sealed class ReadOnlyCall
    {
        public static readonly ReadOnlyCall Instance = new();
    }

    private sealed record RoleRequirement(string Role) : IAuthorizationRequirement;

    private static int Rank(string? role) => role switch
    {
        ApiKeyRoles.Admin => 3,
        ApiKeyRoles.Operator => 2,
        ApiKeyRoles.Reader => 1,
        _ => 0,
    };

    /// <summary>An API key's role against the endpoint's; a device's certificate against its policies.</summary>
    private sealed class RoleHandler(DeviceAuthenticator devices) : AuthorizationHandler<RoleRequirement>
    {
        protected override async Task HandleRequirementAsync(AuthorizationHandlerContext context, RoleRequirement requirement)
        {
            var principal = context.User.FindFirst(ApiAuthentication.PrincipalClaim)?.Value;
            if (principal is null || context.Resource is not HttpContext http)
            {
                return;   // not authenticated: challenged
            }

            var role = context.User.FindFirst(ApiAuthentication.RoleClaim)?.Value;
            if (role is not null)
            {
                if (Rank(role) >= Rank(requirement.Role))
                {
                    context.Succeed(requirement);
                }
                else
                {
                    context.Fail(new AuthorizationFailureReason(this, $"The role {role} of API key {principal} does not allow this call."));
                }

                return;
            }

            // A device (authenticated only where the endpoint says what the call is): all of it allowed by its policies.
            if (http.GetEndpoint()?.Metadata.GetMetadata<DeviceAccess>() is not { } access || http.Connection.ClientCertificate is not { } certificate)
            {
                return;
            }

            foreach (var (action, resource) in access.Checks(http))
            {
                var (allowed, _, why) = await devices.AuthorizeRequestAsync(certificate, http.Connection.RemoteIpAddress?.ToString(), action, resource);
                if (allowed is null)
                {
                    context.Fail(new AuthorizationFailureReason(this, why!));
                    return;
                }
            }

            context.Succeed(requirement);
        }
    }

    /// <summary>Writes every refusal the same way; lets allowed calls through.</summary>
    private sealed class RefusalWriter : IAuthorizationMiddlewareResultHandler
    {
        private readonly AuthorizationMiddlewareResultHandler _default = new();

        public async Task HandleAsync(RequestDelegate next, HttpContext context, AuthorizationPolicy policy, PolicyAuthorizationResult authorizeResult)
        {
            if (authorizeResult.Succeeded)
            {
                await _default.HandleAsync(next, context, policy, authorizeResult);
                return;
            }

            var refusal = authorizeResult.Challenged
                ? context.Items.TryGetValue(ApiAuthentication.FailureKey, out var failure) && failure is ApiRefusal given
                    ? given
                    : ApiRefusal.Unauthorized("A valid API key is required: Authorization: Bearer <key>.")
                : new ApiRefusal(StatusCodes.Status403Forbidden, "AccessDeniedException",
                    authorizeResult.AuthorizationFailure?.FailureReasons.FirstOrDefault()?.Message ?? "This call is not allowed.");
            if (refusal.Status == StatusCodes.Status401Unauthorized)
            {
                context.Response.Headers.WWWAuthenticate = "Bearer";
            }

            await Problems.Create(refusal.Status, refusal.Code, refusal.Message).ExecuteAsync(context);
        }
    }
}

/// <summary>
/// What a call of the HTTPS data plane is in AWS's policy language, for a device calling it with its certificate:
/// the actions and resources (<c>thing/{name}</c>, <c>topic/{topic}</c>) its policies must all allow.
/// </summary>
public sealed class DeviceAccess(Func<HttpContext, IEnumerable<(string Action, string Resource)>> checks)
{
    public IEnumerable<(string Action, string Resource)> Checks(HttpContext context) => checks(context);

    /// <summary>A device may make this call on <c>thing/{thingName}</c> (the route's thing) when its policies allow the action.</summary>
    public static DeviceAccess OnThing(string action) =>
        new(context => [(action, $"thing/{context.Request.RouteValues["thingName"] as string ?? ""}")]);
}
