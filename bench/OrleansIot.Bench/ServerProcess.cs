using System.Globalization;

namespace OrleansIot.Bench;

/// <summary>The broker's process on this machine, found by the port it listens on (Linux /proc), for its memory.</summary>
internal sealed class ServerProcess(int pid)
{
    public int Pid { get; } = pid;

    public static ServerProcess? Find(int? pid, string host, int port)
    {
        if (pid is { } known)
        {
            return new ServerProcess(known);
        }

        if (host is not ("127.0.0.1" or "localhost" or "::1") || !OperatingSystem.IsLinux())
        {
            return null;
        }

        var inodes = ListeningInodes("/proc/net/tcp", port).Concat(ListeningInodes("/proc/net/tcp6", port)).ToHashSet();
        if (inodes.Count == 0)
        {
            return null;
        }

        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var candidate))
            {
                continue;
            }

            try
            {
                foreach (var fd in Directory.EnumerateFileSystemEntries(Path.Combine(dir, "fd")))
                {
                    var target = new FileInfo(fd).LinkTarget;
                    if (target is not null && target.StartsWith("socket:[", StringComparison.Ordinal) && inodes.Contains(target[8..^1]))
                    {
                        return new ServerProcess(candidate);
                    }
                }
            }
            catch (Exception ex) when (ex is UnauthorizedAccessException or IOException)
            {
            }
        }

        return null;
    }

    /// <summary>User plus system CPU time the process has used, in seconds (/proc/PID/stat, 100 ticks a second on Linux).</summary>
    public double? CpuSeconds()
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{Pid}/stat");
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');   // from field 3 (state) on
            return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / 100.0;
        }
        catch (Exception ex) when (ex is IOException or FormatException or IndexOutOfRangeException)
        {
            return null;
        }
    }

    /// <summary>Resident set size now and at its peak, in KiB (VmRSS, VmHWM).</summary>
    public (long RssKiB, long PeakKiB)? Memory()
    {
        try
        {
            long rss = 0, peak = 0;
            foreach (var line in File.ReadLines($"/proc/{Pid}/status"))
            {
                if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
                {
                    rss = ParseKiB(line);
                }
                else if (line.StartsWith("VmHWM:", StringComparison.Ordinal))
                {
                    peak = ParseKiB(line);
                }
            }

            return (rss, peak);
        }
        catch (IOException)
        {
            return null;
        }
    }

    public string Name()
    {
        try
        {
            return File.ReadAllText($"/proc/{Pid}/comm").Trim();
        }
        catch (IOException)
        {
            return "?";
        }
    }

    private static long ParseKiB(string line) =>
        long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture);

    private static IEnumerable<string> ListeningInodes(string table, int port)
    {
        if (!File.Exists(table))
        {
            yield break;
        }

        foreach (var line in File.ReadLines(table).Skip(1))
        {
            var fields = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            // local_address is HEXIP:HEXPORT, st 0A = LISTEN, inode is field 9.
            if (fields.Length > 9 && fields[3] == "0A" && int.Parse(fields[1][(fields[1].IndexOf(':', StringComparison.Ordinal) + 1)..], NumberStyles.HexNumber, CultureInfo.InvariantCulture) == port)
            {
                yield return fields[9];
            }
        }
    }
}
