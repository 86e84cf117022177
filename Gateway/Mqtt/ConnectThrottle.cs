using System.Collections.Concurrent;
using Microsoft.Extensions.Options;

namespace OrleansIot.Gateway.Mqtt;

/// <summary>
/// The connect-rate limits (<see cref="LimitsOptions.MaxConnectsPerSecond"/>, per node, and
/// <see cref="LimitsOptions.MaxConnectsPerSecondPerClientId"/>): checked first at CONNECT, before authentication, so a
/// storm of reconnects costs the node as little as possible per refusal. Time comes from <see cref="TimeProvider"/>.
/// </summary>
internal sealed class ConnectThrottle(IOptions<LimitsOptions> options, TimeProvider time)
{
    private readonly int _perSecond = options.Value.MaxConnectsPerSecond;
    private readonly int _perClientId = options.Value.MaxConnectsPerSecondPerClientId;
    private readonly Lock _lock = new();
    private readonly ConcurrentDictionary<string, ClientWindow> _clients = new(StringComparer.Ordinal);
    private double _tokens = options.Value.MaxConnectsPerSecond;
    private long _refilledAt = time.GetTimestamp();
    private long _prunedAt = time.GetTimestamp();

    /// <summary>What refused a CONNECT.</summary>
    public enum Verdict
    {
        Allowed,
        NodeRate,
        ClientIdRate,
    }

    public Verdict Check(string clientId)
    {
        var now = time.GetTimestamp();
        if (_perClientId > 0 && clientId.Length > 0 && !TakeClient(clientId, now))
        {
            return Verdict.ClientIdRate;
        }

        if (_perSecond > 0)
        {
            lock (_lock)
            {
                // Refill: _perSecond tokens a second, at most a second's worth banked.
                _tokens = Math.Min(_perSecond, _tokens + (time.GetElapsedTime(_refilledAt, now).TotalSeconds * _perSecond));
                _refilledAt = now;
                if (_tokens < 1)
                {
                    return Verdict.NodeRate;
                }

                _tokens--;
            }
        }

        return Verdict.Allowed;
    }

    private bool TakeClient(string clientId, long now)
    {
        Prune(now);
        var window = _clients.GetOrAdd(clientId, static (_, at) => new ClientWindow(at), now);
        lock (window)
        {
            if (time.GetElapsedTime(window.Start, now) >= TimeSpan.FromSeconds(1))
            {
                window.Start = now;
                window.Count = 0;
            }

            return ++window.Count <= _perClientId;
        }
    }

    /// <summary>Forgets client ids whose window is over, at most once a second (the map holds the last second's ids).</summary>
    private void Prune(long now)
    {
        var last = Interlocked.Read(ref _prunedAt);
        if (time.GetElapsedTime(last, now) < TimeSpan.FromSeconds(1) || Interlocked.CompareExchange(ref _prunedAt, now, last) != last)
        {
            return;
        }

        foreach (var (clientId, window) in _clients)
        {
            if (time.GetElapsedTime(window.Start, now) >= TimeSpan.FromSeconds(1))
            {
                _clients.TryRemove(new KeyValuePair<string, ClientWindow>(clientId, window));
            }
        }
    }

    private sealed class ClientWindow(long start)
    {
        public long Start { get; set; } = start;

        public int Count { get; set; }
    }
}
