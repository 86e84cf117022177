using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using OrleansIot.Gateway.Security;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Backend access to the HTTP API: every call under <c>/api</c> and the HTTP data plane (<c>/things/…/shadow</c>)
/// needs <c>Authorization: Bearer &lt;API key&gt;</c> (401 <c>UnauthorizedException</c> without a valid one), or an AWS
/// Signature Version 4 made with the key's access key id and secret access key (<see cref="SigV4Authenticator"/>), whose role
/// allows it (403 <c>AccessDeniedException</c>): readers read; operators also change things, shadows, rules, queues
/// and connections; only admins change identity and access (certificates, CAs, policies, provisioning, API keys).
/// A device may instead call the HTTPS data plane with its client certificate (no Authorization header), under its
/// policies. <c>/health</c> and MQTT over WebSockets are not API calls (devices authenticate at CONNECT).
/// </summary>
public static class ApiAccess
{
    /// <summary>POST endpoints that only read (AWS uses POST for them), by endpoint name.</summary>
    internal static readonly HashSet<string> ReadOnlyPosts = new(StringComparer.Ordinal)
    {
        "TestRuleSql", "ListTargetsForPolicy", "ListAttachedPolicies", "GetEffectivePolicies",
    };

    /// <summary>Paths whose changes are identity and access: admin only.</summary>
    private static readonly string[] IdentityPaths =
    [
        "/api/policies", "/api/target-policies", "/api/policy-targets", "/api/attached-policies", "/api/effective-policies",
        "/api/certificates", "/api/certificate", "/api/keys-and-certificate", "/api/cacertificate", "/api/cacertificates",
        "/api/registrationcode", "/api/apikeys", "/api/provisioning-templates",
    ];

    /// <summary>Checks the caller's key and role; add after routing and the audit log (which records refusals too).</summary>
    public static IApplicationBuilder UseApiKeys(this IApplicationBuilder app) => app.Use(async (context, next) =>
    {
        var path = context.Request.Path;
        if (!path.StartsWithSegments("/api", StringComparison.Ordinal) && !path.StartsWithSegments("/things", StringComparison.Ordinal)
            && !path.StartsWithSegments("/topics", StringComparison.Ordinal))
        {
            await next(context);
            return;
        }

        var header = context.Request.Headers.Authorization.ToString();
        if (header.Length == 0 && context.Connection.ClientCertificate is { } certificate && !path.StartsWithSegments("/api", StringComparison.Ordinal))
        {
            await DeviceRequestAsync(context, next, certificate);
            return;
        }

        (string KeyId, string Role)? caller = null;
        if (SigV4Authenticator.IsSigned(context.Request))
        {
            var signed = await context.RequestServices.GetRequiredService<SigV4Authenticator>().AuthenticateAsync(context);
            if (signed.KeyId is null)
            {
                await Problems.Create(signed.Status, signed.Code!, signed.Message!).ExecuteAsync(context);
                return;
            }

            caller = (signed.KeyId, signed.Role!);
        }
        else if (header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            caller = await context.RequestServices.GetRequiredService<ApiKeyAuthenticator>().AuthenticateAsync(header[7..].Trim());
        }

        if (caller is not { } who)
        {
            context.Response.Headers.WWWAuthenticate = "Bearer";
            await Problems.Create(StatusCodes.Status401Unauthorized, "UnauthorizedException", "A valid API key is required: Authorization: Bearer <key>.").ExecuteAsync(context);
            return;
        }

        context.Items[AuditApi.PrincipalKey] = who.KeyId;
        if (!Allows(who.Role, context))
        {
            await Problems.Create(StatusCodes.Status403Forbidden, "AccessDeniedException", $"The role {who.Role} of API key {who.KeyId} does not allow this call.").ExecuteAsync(context);
            return;
        }

        await next(context);
    });

    /// <summary>
    /// A device on the HTTPS data plane with its client certificate: the shadow (<c>/things/{thingName}/shadow</c>:
    /// AWS's <c>iot:GetThingShadow</c>, <c>iot:UpdateThingShadow</c>, <c>iot:DeleteThingShadow</c> on
    /// <c>thing/{thingName}</c>) and publish (<c>/topics/{topic}</c>: <c>iot:Publish</c>, with <c>iot:RetainPublish</c>
    /// for a retained message, on <c>topic/{topic}</c>).
    /// </summary>
    private static async Task DeviceRequestAsync(HttpContext context, RequestDelegate next, System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
    {
        var method = context.Request.Method;
        var devices = context.RequestServices.GetRequiredService<DeviceAuthenticator>();
        var source = context.Connection.RemoteIpAddress?.ToString();
        (string? CertificateId, bool Authenticated, string? Why) decision;
        if (context.Request.Path.StartsWithSegments("/topics", StringComparison.Ordinal))
        {
            var topic = PublishApi.TopicOf(context);
            decision = await devices.AuthorizeRequestAsync(certificate, source, "iot:Publish", $"topic/{topic}");
            if (decision.CertificateId is not null && string.Equals(context.Request.Query["retain"], "true", StringComparison.OrdinalIgnoreCase))
            {
                decision = await devices.AuthorizeRequestAsync(certificate, source, "iot:RetainPublish", $"topic/{topic}");
            }
        }
        else
        {
            var action = HttpMethods.IsGet(method) ? "iot:GetThingShadow" : HttpMethods.IsDelete(method) ? "iot:DeleteThingShadow" : "iot:UpdateThingShadow";
            decision = await devices.AuthorizeRequestAsync(certificate, source, action, $"thing/{context.Request.RouteValues["thingName"] as string ?? ""}");
        }

        var (certificateId, authenticated, why) = decision;
        if (certificateId is null)
        {
            await (authenticated
                ? Problems.Create(StatusCodes.Status403Forbidden, "AccessDeniedException", why!)
                : Problems.Create(StatusCodes.Status401Unauthorized, "UnauthorizedException", why!)).ExecuteAsync(context);
            return;
        }

        context.Items[AuditApi.PrincipalKey] = certificateId;
        await next(context);
    }

    private static bool Allows(string role, HttpContext context)
    {
        var method = context.Request.Method;
        var name = context.GetEndpoint()?.Metadata.GetMetadata<IEndpointNameMetadata>()?.EndpointName;
        var reads = HttpMethods.IsGet(method) || HttpMethods.IsHead(method) || (name is not null && ReadOnlyPosts.Contains(name));
        if (reads || role == ApiKeyRoles.Admin)
        {
            return true;
        }

        return role == ApiKeyRoles.Operator && !IsIdentity(context.Request.Path);
    }

    private static bool IsIdentity(PathString path)
    {
        foreach (var prefix in IdentityPaths)
        {
            if (path.StartsWithSegments(prefix, StringComparison.Ordinal))
            {
                return true;
            }
        }

        // AttachThingPrincipal / DetachThingPrincipal: /api/things/{name}/principals
        return path.StartsWithSegments("/api/things", StringComparison.Ordinal) && path.Value!.EndsWith("/principals", StringComparison.Ordinal);
    }
}
