using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Options;
using MQTTnet.Server;
using OrleansIot.Gateway.Hosting;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Gateway.Security;

/// <summary>
/// Decides who a connecting device is and whether it may connect. A client certificate must be registered, ACTIVE,
/// within its validity, from an ACTIVE CA, and its policies must allow <c>iot:Connect</c> on the client id (and
/// <c>iot:Publish</c> on the will's topic). An unknown certificate from a CA with auto-registration is registered
/// PENDING_ACTIVATION (JITR) and refused. Without a certificate, only the plain listener admits a device, and only
/// with <see cref="AuthOptions.AllowAnonymous"/>, under the development policy.
/// </summary>
internal sealed class DeviceAuthenticator(
    IGrainFactory grains,
    IOptions<AuthOptions> auth,
    IOptions<RegistryOptions> registry,
    AuditTrail audit,
    TimeProvider time)
{
    private const int MaxParsedPolicies = 10_000;
    private static readonly Dictionary<string, string> NoAttributes = [];
    private readonly bool _allowAnonymous = auth.Value.AllowAnonymous == true;
    private readonly string? _developmentPolicy = string.IsNullOrWhiteSpace(auth.Value.DevelopmentPolicy) ? null : auth.Value.DevelopmentPolicy;
    private readonly string _arnPrefix = registry.Value.Arn("");
    private readonly Dictionary<string, byte[]> _users = auth.Value.Users.ToDictionary(u => u.Key, u => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(u.Value)), StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ConnectionAccess> _accepted = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<(string Name, string Version, string Generation), IotPolicy> _parsed = new();

    /// <summary>Authenticates and authorizes a CONNECT; the access of an accepted one waits for <see cref="Take"/>.</summary>
    public async Task<Outcome> AuthenticateAsync(ValidatingConnectionEventArgs e, WillMessage? will)
    {
        var clientId = ClientIdOf(e);
        var certificate = e.ClientCertificate;
        if (certificate is null)
        {
            if (e.IsSecureConnection)
            {
                return Outcome.Refused("no client certificate on a TLS listener");
            }

            if (e.UserName is { } user && _users.Count > 0)
            {
                return _users.TryGetValue(user, out var expected)
                       && CryptographicOperations.FixedTimeEquals(SHA256.HashData(e.RawPassword ?? []), expected)
                    ? await DevelopmentAsync(e, clientId, "user:" + user, will)
                    : Outcome.Refused($"wrong user name or password for '{user}'", badCredentials: true);
            }

            return _allowAnonymous
                ? await DevelopmentAsync(e, clientId, null, will)
                : Outcome.Refused("no client certificate, and anonymous access is off (Iot:Auth:AllowAnonymous)");
        }

        var (certificateId, grant) = await ResolveAsync(certificate, clientId);
        if (grant.Status is null or CertificateStatus.PendingActivation)
        {
            // A device's first connection registers its certificate when its CA allows (JITR; refused until someone
            // activates it) and, when the CA has a template, provisions the device (JITP; the connection goes on).
            var first = await grains.GetGrain<ICertificateServiceGrain>(0).RegisterOnFirstConnect(certificate.ExportCertificatePem());
            var source = IpOf(e.RemoteEndPoint);
            if (first.Outcome != FirstConnectOutcome.NotRegistered && grant.Status is null)
            {
                // A certificate change the platform made on a device's behalf: audited like the API call it replaces.
                audit.Record(certificateId, "RegisterCertificate", $"certificateId={certificateId},via=JITR", source, 200);
            }

            if (first.Outcome == FirstConnectOutcome.Provisioned)
            {
                audit.Record(certificateId, "RegisterThing", $"certificateId={certificateId},via=JITP", source, 200);
                (certificateId, grant) = await ResolveAsync(certificate, clientId);
            }
            else
            {
                return Outcome.Refused(first.Outcome switch
                {
                    FirstConnectOutcome.PendingActivation when first.Problem is { } failure => $"certificate {certificateId} is PENDING_ACTIVATION: its CA's provisioning template failed: {failure}",
                    FirstConnectOutcome.PendingActivation => $"certificate {certificateId} is PENDING_ACTIVATION (auto-registered)",
                    _ => $"certificate {certificateId} is not registered",
                });
            }
        }

        if (Problem(grant, certificateId) is { } problem)
        {
            return Outcome.Refused(problem);
        }

        var context = new PolicyContext
        {
            ClientId = clientId,
            SourceIp = IpOf(e.RemoteEndPoint),
            Certificate = CertificateFields.Of(certificate),
            ConnectAttributes = ConnectAttributes(e, will),
            Now = time.GetUtcNow(),
        };
        var access = ConnectionAccess.ForCertificate(clientId, certificateId, grant.CaCertificateId, _arnPrefix, NewGrant(grant, context));
        return Authorize(e, access, will, $"the policies of certificate {certificateId}");
    }

    /// <summary>Connect, and publish the will: what the policies of an authenticated connection must allow.</summary>
    private Outcome Authorize(ValidatingConnectionEventArgs e, ConnectionAccess access, WillMessage? will, string whose)
    {
        if (!access.MayConnect())
        {
            return Outcome.Refused($"iot:Connect on client/{access.ClientId} is not allowed by {whose}", connectFailed: true, access.Principal, tellClient: access.CertificateId is null);
        }

        if (will is not null && (!access.MayPublish(will.Message.Topic) || (will.Retain && !access.MayRetain(will.Message.Topic))))
        {
            return Outcome.Refused($"publishing the will to {will.Message.Topic} is not allowed by {whose}", connectFailed: true, access.Principal, tellClient: access.CertificateId is null);
        }

        return Accept(e, access);
    }

    /// <summary>
    /// Development access (anonymous, or a development user): everything allowed, or what the configured development
    /// policy allows. Refused while that policy does not exist, with a reason the client is told (MQTT 5 reason string):
    /// this is a developer's own machine, and the reason is what they need.
    /// </summary>
    private async Task<Outcome> DevelopmentAsync(ValidatingConnectionEventArgs e, string clientId, string? user, WillMessage? will)
    {
        if (_developmentPolicy is not { } name)
        {
            return Accept(e, ConnectionAccess.Development(clientId, user));
        }

        if (await DevelopmentGrantAsync(new PolicyContext
        {
            ClientId = clientId,
            SourceIp = IpOf(e.RemoteEndPoint),
            ConnectAttributes = ConnectAttributes(e, will),
            Now = time.GetUtcNow(),
        }) is not { } grant)
        {
            return Outcome.Refused($"development access is governed by the policy '{name}' (Iot:Auth:DevelopmentPolicy), which does not exist: create it with the policy API", principal: user ?? "anonymous", tellClient: true);
        }

        return Authorize(e, ConnectionAccess.DevelopmentUnder(clientId, user, _arnPrefix, grant), will, $"the development policy '{name}' (Iot:Auth:DevelopmentPolicy)");
    }

    /// <summary>The development policy's grant for a connection with this context; null while the policy does not exist.</summary>
    private async Task<ConnectionAccess.Grant?> DevelopmentGrantAsync(PolicyContext context)
    {
        var name = _developmentPolicy!;
        return await grains.GetGrain<IPolicyGrain>(name).Get() is { } policy
            ? new ConnectionAccess.Grant([Parsed(policy)], context, time, new HashSet<string>(StringComparer.Ordinal) { name })
            : null;
    }

    /// <summary>A device's certificate on HTTPS: its id, and why it does not authenticate (null when it does).</summary>
    public async Task<(string CertificateId, string? Why)> AuthenticateRequestAsync(X509Certificate2 certificate)
    {
        var (certificateId, grant) = await ResolveAsync(certificate, "");
        return grant.Status is null ? (certificateId, $"certificate {certificateId} is not registered") : (certificateId, Problem(grant, certificateId));
    }

    /// <summary>
    /// A request of the HTTPS data plane made with a client certificate: the certificate must authenticate as at
    /// CONNECT, and its policies allow <paramref name="action"/> on <paramref name="resource"/> (no client id over
    /// HTTP, so no thing variables, as on AWS). The certificate id when allowed; otherwise why not, and whether
    /// the certificate authenticated at all.
    /// </summary>
    public async Task<(string? CertificateId, bool Authenticated, string? Why)> AuthorizeRequestAsync(X509Certificate2 certificate, string? sourceIp, string action, string resource)
    {
        var (certificateId, grant) = await ResolveAsync(certificate, "");
        if (grant.Status is null)
        {
            return (null, false, $"certificate {certificateId} is not registered");
        }

        if (Problem(grant, certificateId) is { } problem)
        {
            return (null, false, problem);
        }

        var context = new PolicyContext { SourceIp = sourceIp, Certificate = CertificateFields.Of(certificate), Now = time.GetUtcNow() };
        var allowed = PolicyEvaluator.Evaluate([.. grant.Policies.Select(Parsed)], action, _arnPrefix + resource, context) == PolicyDecision.Allow;
        return allowed ? (certificateId, true, null) : (null, true, $"the policies of certificate {certificateId} do not allow {action} on {resource}");
    }

    /// <summary>
    /// The access of the connection accepted for <paramref name="clientId"/> from <paramref name="remote"/> (two
    /// connections racing for one client id each get their own); a connection without one may do nothing.
    /// </summary>
    public ConnectionAccess Take(string clientId, EndPoint? remote) =>
        _accepted.TryRemove(Key(clientId, remote), out var access) ? access : ConnectionAccess.ForCertificate(clientId, "unknown", null, _arnPrefix, new ConnectionAccess.Grant([], new PolicyContext { Now = time.GetUtcNow() }, time));

    /// <summary>Forgets an accepted access whose connection was refused later (the session store failed).</summary>
    public void Forget(ValidatingConnectionEventArgs e) => _accepted.TryRemove(Key(ClientIdOf(e), e.RemoteEndPoint), out _);

    /// <summary>
    /// Reads the connection's grant again (its certificate, CA, thing or policies changed). False when the
    /// certificate no longer authenticates: the caller closes the connection.
    /// </summary>
    public async Task<bool> RefreshAsync(ConnectionAccess access)
    {
        if (access.Current is not { } current)
        {
            return true;
        }

        if (access.CertificateId is not { } certificateId)
        {
            // Development access under the development policy: its new version, or gone (the connection closes).
            var again = access.BeginRefresh();
            if (await DevelopmentGrantAsync(Refreshed(current.Context)) is not { } development)
            {
                return false;
            }

            access.Replace(development, again);
            return true;
        }

        var ticket = access.BeginRefresh();
        var grant = await grains.GetGrain<IAccessGrain>(0).Resolve(certificateId, access.ClientId);
        if (grant.Status is null || Problem(grant, certificateId) is not null)
        {
            return false;
        }

        access.Replace(NewGrant(grant, current.Context), ticket);
        return true;
    }

    /// <summary>The certificate's id (hex SHA-256 of DER) and what the registry says of it for this client id.</summary>
    private async Task<(string CertificateId, DeviceGrant Grant)> ResolveAsync(X509Certificate2 certificate, string clientId)
    {
        var certificateId = Convert.ToHexStringLower(SHA256.HashData(certificate.RawData));
        return (certificateId, await grains.GetGrain<IAccessGrain>(0).Resolve(certificateId, clientId));
    }

    /// <summary>Why the certificate of <paramref name="grant"/> does not authenticate, or null.</summary>
    private string? Problem(DeviceGrant grant, string certificateId)
    {
        var now = time.GetUtcNow();
        return grant.Status != CertificateStatus.Active ? $"certificate {certificateId} is {grant.Status}"
            : !grant.CaActive ? $"the CA {grant.CaCertificateId} of certificate {certificateId} is not ACTIVE"
            : now < grant.NotBefore ? $"certificate {certificateId} is not valid before {grant.NotBefore:u}"
            : now > grant.NotAfter ? $"certificate {certificateId} expired on {grant.NotAfter:u}"
            : null;
    }

    /// <summary>
    /// The grant of a connection: the policies, and the variables' values from the connection itself (client id,
    /// address, certificate, connect attributes: kept across re-reads) and from the registry (the thing: re-read).
    /// </summary>
    private ConnectionAccess.Grant NewGrant(DeviceGrant grant, PolicyContext connection)
    {
        var thing = grant.Thing;
        var context = new PolicyContext
        {
            ClientId = connection.ClientId,
            SourceIp = connection.SourceIp,
            Certificate = connection.Certificate,
            ConnectAttributes = connection.ConnectAttributes,
            Now = time.GetUtcNow(),
            ThingName = thing?.ThingName,
            ThingTypeName = thing?.ThingTypeName,
            ThingAttributes = thing?.Attributes ?? NoAttributes,
            IsAttached = thing is null ? null : grant.IsAttached,
        };
        return new ConnectionAccess.Grant([.. grant.Policies.Select(Parsed)], context, time, grant.Policies.Select(p => p.PolicyName).ToHashSet(StringComparer.Ordinal));
    }

    /// <summary>Policy documents parsed once per node and version (they were validated when stored).</summary>
    private IotPolicy Parsed(PolicyInfo policy)
    {
        var key = (policy.PolicyName, policy.DefaultVersionId, policy.GenerationId);
        if (_parsed.TryGetValue(key, out var parsed))
        {
            return parsed;
        }

        if (_parsed.Count >= MaxParsedPolicies)
        {
            _parsed.Clear();
        }

        return _parsed[key] = IotPolicy.Parse(policy.PolicyDocument);
    }

    /// <summary>The client id the connection will have: its own, or the one assigned to an MQTT 5 client that sent none.</summary>
    private static string ClientIdOf(ValidatingConnectionEventArgs e) => Mqtt.ClientIds.Of(e);

    private static string Key(string clientId, EndPoint? remote) => $"{clientId}\n{remote}";

    private Outcome Accept(ValidatingConnectionEventArgs e, ConnectionAccess access)
    {
        _accepted[Key(ClientIdOf(e), e.RemoteEndPoint)] = access;
        return new Outcome(access, null, false, access.Principal, false);
    }

    private static List<string> ConnectAttributes(ValidatingConnectionEventArgs e, WillMessage? will)
    {
        var attributes = new List<string>(2);
        if (e.CleanSession == false || e.SessionExpiryInterval > 0)
        {
            attributes.Add("PersistentConnect");
        }

        if (will is not null)
        {
            attributes.Add("LastWill");
        }

        return attributes;
    }

    public static string? IpOf(EndPoint? endPoint) => endPoint switch
    {
        IPEndPoint { Address.IsIPv4MappedToIPv6: true } ip => ip.Address.MapToIPv4().ToString(),
        IPEndPoint ip => ip.Address.ToString(),
        _ => null,
    };

    /// <summary>The same connection's variables at a later time.</summary>
    private PolicyContext Refreshed(PolicyContext context) => new()
    {
        ClientId = context.ClientId,
        SourceIp = context.SourceIp,
        Certificate = context.Certificate,
        ConnectAttributes = context.ConnectAttributes,
        Now = time.GetUtcNow(),
    };

    /// <summary>
    /// The decision on a CONNECT: an access, or why not (and whether AWS would send <c>connect_failed</c>; whether the
    /// client is told why, in the MQTT 5 reason string: only for development access, never for a certificate).
    /// </summary>
    internal readonly record struct Outcome(ConnectionAccess? Access, string? Why, bool ConnectFailed, string Principal, bool BadCredentials, bool TellClient = false)
    {
        public static Outcome Refused(string why, bool connectFailed = false, string principal = "anonymous", bool badCredentials = false, bool tellClient = false) =>
            new(null, why, connectFailed, principal, badCredentials, tellClient);
    }
}
