using OrleansIot.Grains.Abstractions.Sessions;

namespace OrleansIot.Grains.Sessions;

/// <summary>
/// Which node holds a client id's live connection. In memory: it describes live connections, which do not
/// survive their nodes; if this grain's own silo dies, the next connect of the client re-creates it (a stale
/// connection elsewhere is then closed by its keep-alive instead of by takeover).
/// </summary>
[GrainType("client-session")]
internal sealed class ClientSessionGrain : Grain, IClientSessionGrain
{
    private ClientConnection? _current;

    public Task<ClientConnection?> Attach(ClientConnection connection)
    {
        var previous = _current?.SessionId == connection.SessionId ? null : _current;
        _current = connection;
        return Task.FromResult(previous);
    }

    public Task Detach(string sessionId)
    {
        if (_current?.SessionId == sessionId)
        {
            _current = null;
        }

        return Task.CompletedTask;
    }

    public Task<ClientConnection?> GetConnection() => Task.FromResult(_current);
}
