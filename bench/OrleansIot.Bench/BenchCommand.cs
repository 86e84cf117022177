namespace OrleansIot.Bench;

internal static class BenchCommand
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0 || args[0] is "-h" or "--help" or "help")
        {
            Console.WriteLine(BenchOptions.Usage);
            return args.Length == 0 ? 2 : 0;
        }

        if (args[0] == "idle")
        {
            using var idleStop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                idleStop.Cancel();
            };
            return await IdleRun.RunAsync(args[1..], idleStop.Token);
        }

        if (args[0] == "shadow")
        {
            using var shadowStop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                shadowStop.Cancel();
            };
            return await ShadowRun.RunAsync(args[1..], shadowStop.Token);
        }

        if (args[0] == "mtls")
        {
            using var mtlsStop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                mtlsStop.Cancel();
            };
            return await MtlsRun.RunAsync(args[1..], mtlsStop.Token);
        }

        if (args[0] == "policy")
        {
            return PolicyRun.Run(args[1..]);
        }

        if (args[0] == "rules")
        {
            using var rulesStop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                rulesStop.Cancel();
            };
            return await RulesRun.RunAsync(args[1..], rulesStop.Token);
        }

        if (args[0] is "jobs" or "download" or "fleet")
        {
            using var jobsStop = new CancellationTokenSource();
            Console.CancelKeyPress += (_, e) =>
            {
                e.Cancel = true;
                jobsStop.Cancel();
            };
            return args[0] switch
            {
                "jobs" => await JobsRun.RunAsync(args[1..], jobsStop.Token),
                "fleet" => await FleetRun.RunAsync(args[1..], jobsStop.Token),
                _ => await DownloadRun.RunAsync(args[1..], jobsStop.Token),
            };
        }

        if (args[0] != "pubsub")
        {
            Console.Error.WriteLine($"unknown command '{args[0]}'\n{BenchOptions.Usage}\n{IdleRun.Usage}\n{ShadowRun.Usage}\n{RulesRun.Usage}\n{PolicyRun.Usage}\n{MtlsRun.Usage}\n{JobsRun.Usage}\n{DownloadRun.Usage}\n{FleetRun.Usage}");
            return 2;
        }

        BenchOptions options;
        try
        {
            options = BenchOptions.Parse(args[1..]);
        }
        catch (Exception ex) when (ex is ArgumentException or FormatException)
        {
            Console.Error.WriteLine($"error: {ex.Message}\n{BenchOptions.Usage}");
            return 2;
        }

        using var stop = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) =>
        {
            e.Cancel = true;
            stop.Cancel();
        };
        return await new PubSubRun(options).ExecuteAsync(stop.Token);
    }
}
