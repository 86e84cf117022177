using System.Globalization;
using System.Security.Claims;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Gateway.Security;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Admin access to the Orleans Dashboard. A browser cannot send the console's Bearer header when it navigates, so the
/// console, signed in with an admin key, asks for a dashboard session: a cookie for <c>/dashboard</c> only
/// (<c>HttpOnly</c>, <c>SameSite=Strict</c>, <c>Secure</c> over HTTPS) that names the key and an expiry and is signed
/// with the key's stored secret hash. Any node checks it (every node can read the key), nothing is kept per session,
/// and deleting the key (or the session expiring) ends it. The cookie never reaches the API: the API still needs the
/// header, so the cookie cannot be used to make changes from another site.
/// </summary>
public static class DashboardSessions
{
    public const string CookieName = "oiot_dashboard";
    public const string PathPrefix = "/dashboard";

    public static IEndpointRouteBuilder MapDashboardSessionApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/console/dashboard-session", StartAsync).WithTags("Console").WithName("StartDashboardSession").ChangedBy(ApiKeyRoles.Admin);
        return endpoints;
    }

    /// <summary>Lets only a valid dashboard session through to the endpoints of <paramref name="dashboard"/>; 401 problem+json otherwise.</summary>
    public static TBuilder RequireDashboardSession<TBuilder>(this TBuilder dashboard) where TBuilder : IEndpointConventionBuilder
    {
        dashboard.AllowAnonymous();   // the API's header schemes do not apply: the cookie is checked here
        dashboard.AddEndpointFilter(async (context, next) =>
        {
            var http = context.HttpContext;
            var services = http.RequestServices;
            var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
            if (!http.Request.Cookies.TryGetValue(CookieName, out var cookie)
                || !await IsValidAsync(cookie, services.GetRequiredService<ApiKeyAuthenticator>(), now))
            {
                return Problems.Create(401, "UnauthorizedException", "The dashboard needs a session: sign in to the console with an admin key and open Dashboard.");
            }

            http.Response.Headers.CacheControl = "no-store";
            return await next(context);
        });
        return dashboard;
    }

    private static async Task<Microsoft.AspNetCore.Http.HttpResults.NoContent> StartAsync(HttpContext http, ApiKeyAuthenticator keys, TimeProvider time, IOptions<DashboardAccessOptions> options)
    {
        if (!options.Value.Enabled)
        {
            throw new Grains.Abstractions.ApiException(404, "ResourceNotFoundException", "The dashboard is turned off on this node (Iot:Dashboard:Enabled).");
        }

        var keyId = http.User.FindFirstValue(ApiAuthentication.PrincipalClaim)!;
        if (await keys.SecretOfAsync(keyId) is not { Role: ApiKeyRoles.Admin } key)
        {
            throw new Grains.Abstractions.ApiException(403, "AccessDeniedException", "The dashboard is for admin keys.");
        }

        var expires = time.GetUtcNow().Add(options.Value.SessionLifetime).ToUnixTimeSeconds();
        http.Response.Cookies.Append(CookieName, $"{keyId}.{expires}.{Sign(key.SecretHash, keyId, expires)}", new CookieOptions
        {
            Path = PathPrefix,
            HttpOnly = true,
            SameSite = SameSiteMode.Strict,
            Secure = http.Request.IsHttps,
            MaxAge = options.Value.SessionLifetime,
        });
        return TypedResults.NoContent();
    }

    internal static async ValueTask<bool> IsValidAsync(string cookie, ApiKeyAuthenticator keys, DateTimeOffset now)
    {
        var parts = cookie.Split('.');
        if (parts.Length != 3 || !long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var expires)
            || expires < now.ToUnixTimeSeconds() || await keys.SecretOfAsync(parts[0]) is not { Role: ApiKeyRoles.Admin } key)
        {
            return false;
        }

        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Sign(key.SecretHash, parts[0], expires)), Encoding.ASCII.GetBytes(parts[2]));
    }

    private static string Sign(byte[] secretHash, string keyId, long expires) =>
        Base64Url(HMACSHA256.HashData(secretHash, Encoding.UTF8.GetBytes($"orleansiot-dashboard\n{keyId}\n{expires}")));

    private static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');
}
