using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.DataProtection.Repositories;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using OrleansIot.Gateway.Security;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// Who calls the HTTP API, one ASP.NET Core authentication handler per scheme: an API key (<c>Authorization: Bearer</c>),
/// the same key's AWS credentials (SigV4), or a device's client certificate (HTTPS, no Authorization header, on the
/// endpoints a device may call: elsewhere it is no credential, and the call is 401 as without one). The
/// default scheme picks one from the request. A refusal is AWS's error, written where every refusal is written
/// (<see cref="ApiAccess"/>'s result handler) from what the handler left in <see cref="FailureKey"/>.
/// </summary>
public static class ApiAuthentication
{
    public const string Scheme = "iot";
    public const string ApiKeyScheme = "apikey";
    public const string SigV4Scheme = "sigv4";
    public const string DeviceScheme = "device";

    /// <summary>The caller's id (API key id or certificate id): the audit log's principal.</summary>
    public const string PrincipalClaim = "iot:principal";

    /// <summary>An API key's role (<see cref="Grains.Abstractions.ApiKeys.ApiKeyRoles"/>); a device has none.</summary>
    public const string RoleClaim = "iot:role";

    /// <summary>Where a handler leaves why it refused the caller (<see cref="ApiRefusal"/>).</summary>
    public const string FailureKey = "iot.auth.failure";

    internal static IServiceCollection AddApiAuthentication(this IServiceCollection services)
    {
        // ASP.NET Core's authentication brings data protection, which would make and store a key ring on disk at start
        // (and warn that it is unencrypted); nothing here protects data with it (no cookies, no tokens): keep its keys in
        // memory, where there is nothing to encrypt them against.
        services.AddDataProtection();
        services.Configure<KeyManagementOptions>(o =>
        {
            o.XmlRepository = new MemoryXmlRepository();
            o.XmlEncryptor = new NullXmlEncryptor();
        });
        services.AddAuthentication(Scheme)
            .AddPolicyScheme(Scheme, "OrleansIot API", o => o.ForwardDefaultSelector = context =>
                SigV4Authenticator.IsSigned(context.Request) ? SigV4Scheme
                : context.Request.Headers.Authorization.Count == 0 && context.Connection.ClientCertificate is not null
                  && context.GetEndpoint()?.Metadata.GetMetadata<DeviceAccess>() is not null ? DeviceScheme
                : ApiKeyScheme)
            .AddScheme<AuthenticationSchemeOptions, ApiKeyHandler>(ApiKeyScheme, null)
            .AddScheme<AuthenticationSchemeOptions, SigV4Handler>(SigV4Scheme, null)
            .AddScheme<AuthenticationSchemeOptions, DeviceHandler>(DeviceScheme, null);
        return services;
    }

    internal static AuthenticateResult Caller(string scheme, string principal, string? role)
    {
        Claim[] claims = role is null ? [new(PrincipalClaim, principal)] : [new(PrincipalClaim, principal), new(RoleClaim, role)];
        return AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(new ClaimsIdentity(claims, scheme)), scheme));
    }

    internal static AuthenticateResult Refuse(HttpContext context, ApiRefusal refusal)
    {
        context.Items[FailureKey] = refusal;
        return AuthenticateResult.Fail(refusal.Message);
    }

    /// <summary><c>Authorization: Bearer &lt;API key&gt;</c>; without one, nothing (the call is then challenged: 401).</summary>
    private sealed class ApiKeyHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, ApiKeyAuthenticator keys)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            var header = Request.Headers.Authorization.ToString();
            if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
            {
                return AuthenticateResult.NoResult();
            }

            return await keys.AuthenticateAsync(header[7..].Trim()) is { } caller
                ? Caller(ApiKeyScheme, caller.KeyId, caller.Role)
                : Refuse(Context, ApiRefusal.Unauthorized("A valid API key is required: Authorization: Bearer <key>."));
        }
    }

    /// <summary>AWS Signature Version 4 with an API key's access key id and secret access key.</summary>
    private sealed class SigV4Handler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, SigV4Authenticator signatures)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            var result = await signatures.AuthenticateAsync(Context);
            return result.KeyId is not null
                ? Caller(SigV4Scheme, result.KeyId, result.Role)
                : Refuse(Context, new ApiRefusal(result.Status, result.Code!, result.Message!));
        }
    }

    /// <summary>
    /// A device's client certificate on HTTPS: registered, ACTIVE, its CA active. What it may call is decided per call
    /// by its policies (<see cref="DeviceAccess"/> on the endpoint).
    /// </summary>
    private sealed class DeviceHandler(IOptionsMonitor<AuthenticationSchemeOptions> options, ILoggerFactory logger, UrlEncoder encoder, DeviceAuthenticator devices)
        : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
    {
        protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
        {
            if (Context.Connection.ClientCertificate is not { } certificate)
            {
                return AuthenticateResult.NoResult();
            }

            var (certificateId, why) = await devices.AuthenticateRequestAsync(certificate);
            return why is null
                ? Caller(DeviceScheme, certificateId, role: null)
                : Refuse(Context, ApiRefusal.Unauthorized(why));
        }
    }
}

/// <summary>Data protection keys kept in this process only (nothing is protected with them across restarts).</summary>
internal sealed class MemoryXmlRepository : IXmlRepository
{
    private readonly List<System.Xml.Linq.XElement> _elements = [];

    public IReadOnlyCollection<System.Xml.Linq.XElement> GetAllElements()
    {
        lock (_elements)
        {
            return [.. _elements.Select(e => new System.Xml.Linq.XElement(e))];
        }
    }

    public void StoreElement(System.Xml.Linq.XElement element, string friendlyName)
    {
        lock (_elements)
        {
            _elements.Add(new System.Xml.Linq.XElement(element));
        }
    }
}

/// <summary>Why a call was refused, as AWS answers it: status, exception name, message.</summary>
public sealed record ApiRefusal(int Status, string Code, string Message)
{
    public static ApiRefusal Unauthorized(string message) => new(StatusCodes.Status401Unauthorized, "UnauthorizedException", message);
}
