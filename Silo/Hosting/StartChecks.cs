using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Configuration;
using Npgsql;
using OrleansIot.Gateway.Hosting;

namespace OrleansIot.Silo.Hosting;

/// <summary>
/// What the environment must give a node before it starts, checked up front so that a clash is one line naming the
/// setting, not a crash with a hundred lines of stack: every port free (Orleans' own listeners share a port with
/// another process's instead of failing, which would split a cluster's traffic between two nodes), and PostgreSQL
/// reachable in PostgreSQL mode.
/// </summary>
internal static class StartChecks
{
    public static async Task<IReadOnlyList<string>> RunAsync(IConfiguration configuration)
    {
        var problems = new List<string>();
        foreach (var listener in Listeners(configuration).GroupBy(l => l.Key))
        {
            if (listener.FirstOrDefault(l => InUse(l.Address, l.Port)) is { Key: not null } taken)
            {
                problems.Add($"{taken.Key}: {Format(taken.Address, taken.Port)} is already in use (another node on this machine? Iot:PortOffset=1 moves every port of a second one).");
            }
        }

        var storage = Settings.Bind<StorageOptions>(configuration, StorageOptions.SectionName);
        if (storage.Storage == StorageMode.Postgres && configuration.GetConnectionString("Iot") is { } connectionString)
        {
            var target = new NpgsqlConnectionStringBuilder(connectionString) { Timeout = 10 };
            try
            {
                await using var connection = new NpgsqlConnection(target.ConnectionString);
                await connection.OpenAsync();
            }
            catch (Exception ex) when (ex is NpgsqlException or ArgumentException or InvalidOperationException)
            {
                problems.Add($"ConnectionStrings:Iot: cannot connect to PostgreSQL at {target.Host}:{target.Port} (database {target.Database}, user {target.Username}): {Innermost(ex).Message}");
            }
        }

        return problems;
    }

    /// <summary>Every port the node will listen on, with its setting and address.</summary>
    private static IEnumerable<(string Key, IPAddress Address, int Port)> Listeners(IConfiguration configuration)
    {
        var node = Settings.Bind<NodeOptions>(configuration, NodeOptions.SectionName);
        var mqtt = Settings.Bind<MqttOptions>(configuration, MqttOptions.SectionName);
        var tls = Settings.Bind<TlsOptions>(configuration, TlsOptions.SectionName);
        var cluster = Settings.Bind<ClusterSettings>(configuration, ClusterSettings.SectionName);
        List<(string, int)> ports = [("Iot:Mqtt:Port", mqtt.Port), ("Iot:Http:Port", Settings.Bind<HttpOptions>(configuration, HttpOptions.SectionName).Port)];
        if (tls.Enabled)
        {
            ports.Add(("Iot:Mqtt:TlsPort", mqtt.TlsPort));
            ports.Add(("Iot:Https:Port", Settings.Bind<HttpsOptions>(configuration, HttpsOptions.SectionName).Port));
            if (tls.MultiplexPort != 0)
            {
                ports.Add(("Iot:Tls:MultiplexPort", tls.MultiplexPort));
            }
        }

        foreach (var (key, port) in ports)
        {
            foreach (var address in Addresses(node.BindAddress))
            {
                yield return (key, address, port);
            }
        }

        foreach (var address in Addresses(cluster.Endpoints.ListenAddress ?? node.BindAddress))
        {
            if (address.AddressFamily == AddressFamily.InterNetwork || address.Equals(IPAddress.IPv6Any))
            {
                yield return ("Orleans:Endpoints:SiloPort", address, cluster.Endpoints.SiloPort);
                yield return ("Orleans:Endpoints:GatewayPort", address, cluster.Endpoints.GatewayPort);
            }
        }
    }

    /// <summary>The addresses a bind address means (as Kestrel and the silo read it).</summary>
    private static IEnumerable<IPAddress> Addresses(string bindAddress) => bindAddress switch
    {
        "localhost" => Socket.OSSupportsIPv6 ? [IPAddress.Loopback, IPAddress.IPv6Loopback] : [IPAddress.Loopback],
        "*" => [IPAddress.Any],
        _ => IPAddress.TryParse(bindAddress, out var address) ? [address] : [],
    };

    /// <summary>
    /// Whether something listens on the port already: a bind fails (with SO_REUSEADDR, so that connections of an
    /// earlier run in TIME_WAIT do not count), or, for a listener that let others share its port (SO_REUSEPORT, as
    /// Orleans' do, where a bind succeeds), a connection is accepted.
    /// </summary>
    private static bool InUse(IPAddress address, int port)
    {
        try
        {
            using var socket = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(new IPEndPoint(address, port));
        }
        catch (SocketException ex) when (ex.SocketErrorCode == SocketError.AddressAlreadyInUse)
        {
            return true;
        }
        catch (SocketException)
        {
            return false;   // not this check's business (an address this machine lacks): the listener will say
        }

        try
        {
            using var probe = new Socket(address.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            var target = address.Equals(IPAddress.Any) ? IPAddress.Loopback : address.Equals(IPAddress.IPv6Any) ? IPAddress.IPv6Loopback : address;
            return probe.ConnectAsync(new IPEndPoint(target, port)).Wait(TimeSpan.FromSeconds(1));
        }
        catch (AggregateException)
        {
            return false;   // refused: nobody listens
        }
    }

    private static string Format(IPAddress address, int port) => new IPEndPoint(address, port).ToString();

    private static Exception Innermost(Exception exception) => exception.InnerException is { } inner ? Innermost(inner) : exception;
}
