using System.Collections.Concurrent;
using OrleansIot.Grains.Abstractions.Policies;

namespace OrleansIot.Gateway.Security;

/// <summary>
/// What one connection may do: its identity (certificate or development access) and its policies, with the
/// decisions made so far cached per action and topic, so a publish or delivery costs a dictionary lookup. A change
/// of the certificate, its CA, its thing or any policy replaces the grant (and with it every cached decision).
/// </summary>
internal sealed class ConnectionAccess
{
    /// <summary>Decisions kept per action before the cache starts again (a connection using ever new topics).</summary>
    public const int MaxCachedDecisions = 1024;

    private readonly string? _user;
    private volatile Grant? _grant;
    private int _refreshes;

    private ConnectionAccess(string clientId, string? certificateId, string? caCertificateId, string arnPrefix, string? user = null)
    {
        ClientId = clientId;
        _user = user;
        CertificateId = certificateId;
        CaCertificateId = caCertificateId;
        ArnPrefix = arnPrefix;
    }

    /// <summary>A connection under the development policy (anonymous, or a development <paramref name="user"/>): everything allowed, nothing checked.</summary>
    public static ConnectionAccess Development(string clientId, string? user = null) => new(clientId, null, null, "", user);

    /// <summary>A connection under development access governed by the configured development policy (<paramref name="grant"/>).</summary>
    public static ConnectionAccess DevelopmentUnder(string clientId, string? user, string arnPrefix, Grant grant) =>
        new(clientId, null, null, arnPrefix, user) { _grant = grant };

    /// <summary>A connection authenticated by a certificate, governed by <paramref name="grant"/>.</summary>
    public static ConnectionAccess ForCertificate(string clientId, string certificateId, string? caCertificateId, string arnPrefix, Grant grant) =>
        new(clientId, certificateId, caCertificateId, arnPrefix) { _grant = grant };

    public string ClientId { get; }

    /// <summary>The certificate's id, or null for development access.</summary>
    public string? CertificateId { get; }

    public string? CaCertificateId { get; }

    /// <summary>AWS's <c>principalIdentifier</c>: the certificate id, the development user, or "anonymous".</summary>
    public string Principal => CertificateId ?? _user ?? "anonymous";

    public bool Unrestricted => _grant is null;

    /// <summary><c>arn:aws:iot:region:account:</c>, to which the resource kind and name are appended.</summary>
    public string ArnPrefix { get; }

    /// <summary>The current grant; null under development access.</summary>
    public Grant? Current => _grant;

    /// <summary>Starts a re-read of the grant; only the newest re-read may replace it.</summary>
    public int BeginRefresh() => Interlocked.Increment(ref _refreshes);

    /// <summary>
    /// Replaces the policies and context (decisions made under the old ones are gone), unless a re-read started
    /// after <paramref name="ticket"/>'s will replace them.
    /// </summary>
    public void Replace(Grant grant, int ticket)
    {
        if (Volatile.Read(ref _refreshes) == ticket)
        {
            _grant = grant;
        }
    }

    public bool MayPublish(string topic) => Decide(Grant.PublishCache, Actions.Publish, "topic/", topic);

    public bool MayRetain(string topic) => Decide(Grant.RetainCache, Actions.RetainPublish, "topic/", topic);

    public bool MaySubscribe(string filter) => Decide(Grant.SubscribeCache, Actions.Subscribe, "topicfilter/", filter);

    public bool MayReceive(string topic) => Decide(Grant.ReceiveCache, Actions.Receive, "topic/", topic);

    /// <summary><c>iot:Connect</c> on <c>client/{clientId}</c>: asked once per connection, so not cached.</summary>
    public bool MayConnect() => _grant is not { } grant
        || PolicyEvaluator.Evaluate(grant.Policies, Actions.Connect, string.Concat(ArnPrefix, "client/", ClientId), grant.Context) == PolicyDecision.Allow;

    private bool Decide(int cacheIndex, string action, string kind, string name)
    {
        if (_grant is not { } grant)
        {
            return true;
        }

        if (grant.ReadsTime)
        {
            // aws:CurrentTime / aws:EpochTime: a decision is only good for now, so each one is taken afresh.
            return PolicyEvaluator.Evaluate(grant.Policies, action, string.Concat(ArnPrefix, kind, name), grant.Context.At(grant.Clock.GetUtcNow())) == PolicyDecision.Allow;
        }

        var cache = grant.Cache(cacheIndex);
        if (cache.TryGetValue(name, out var allowed))
        {
            return allowed;
        }

        allowed = PolicyEvaluator.Evaluate(grant.Policies, action, string.Concat(ArnPrefix, kind, name), grant.Context) == PolicyDecision.Allow;
        if (cache.Count >= MaxCachedDecisions)
        {
            cache.Clear();
        }

        cache[name] = allowed;
        return allowed;
    }

    /// <summary>AWS IoT's data-plane actions.</summary>
    public static class Actions
    {
        public const string Connect = "iot:Connect";
        public const string Publish = "iot:Publish";
        public const string RetainPublish = "iot:RetainPublish";
        public const string Subscribe = "iot:Subscribe";
        public const string Receive = "iot:Receive";
    }

    /// <summary>
    /// The policies of a connection, the values of their variables, and the decisions made with them: one cache per
    /// action, made on the action's first use (most devices only publish, and idle connections should cost little).
    /// </summary>
    internal sealed class Grant(IReadOnlyList<IotPolicy> policies, PolicyContext context, TimeProvider clock, IReadOnlySet<string>? policyNames = null)
    {
        public const int PublishCache = 0;
        public const int RetainCache = 1;
        public const int SubscribeCache = 2;
        public const int ReceiveCache = 3;

        private readonly ConcurrentDictionary<string, bool>?[] _caches = new ConcurrentDictionary<string, bool>?[4];

        public IReadOnlyList<IotPolicy> Policies { get; } = policies;

        /// <summary>A policy reads the time: decisions are not cached.</summary>
        public bool ReadsTime { get; } = policies.Any(p => p.ReadsTime);
        public PolicyContext Context { get; } = context;

        /// <summary>The time decisions that read it (<see cref="ReadsTime"/>) are taken at.</summary>
        public TimeProvider Clock { get; } = clock;

        /// <summary>The names of the policies, to know which connections a policy's new version concerns.</summary>
        public IReadOnlySet<string> PolicyNames { get; } = policyNames ?? new HashSet<string>(StringComparer.Ordinal);

        public ConcurrentDictionary<string, bool> Cache(int index) =>
            Volatile.Read(ref _caches[index]) ?? Interlocked.CompareExchange(ref _caches[index], new(StringComparer.Ordinal), null) ?? _caches[index]!;
    }
}
