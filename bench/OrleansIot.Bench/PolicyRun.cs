using System.Diagnostics;
using System.Globalization;
using OrleansIot.Grains.Abstractions.Policies;

namespace OrleansIot.Bench;

/// <summary>
/// <c>policy</c>: the cost of authorizing one publish with the standard per-thing policy: evaluated from scratch, and
/// answered by the gateway's per-connection <c>ConnectionAccess</c> (its decision cache), as on a live connection.
/// </summary>
internal static class PolicyRun
{
    public const string Usage = """
        policy [--iterations 2000000]
          evaluates iot:Publish on the device's own topic against a per-thing policy (variables, 4 statements):
          ns per decision from scratch and from a warm per-connection cache
        """;

    private const string PerThingPolicy = """
        {"Version":"2012-10-17","Statement":[
          {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
          {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:*:*:topic/dt/${iot:Connection.Thing.ThingName}/*","arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
          {"Effect":"Allow","Action":"iot:Subscribe","Resource":["arn:aws:iot:*:*:topicfilter/cmd/${iot:Connection.Thing.ThingName}/*","arn:aws:iot:*:*:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
          {"Effect":"Deny","Action":"iot:*","Resource":"*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"false"}}}]}
        """;

    public static int Run(string[] args)
    {
        var iterations = args.Length >= 2 && args[0] == "--iterations" ? int.Parse(args[1], CultureInfo.InvariantCulture) : 2_000_000;
        var policy = IotPolicy.Parse(PerThingPolicy);
        var context = new PolicyContext { ClientId = "sensor-1", ThingName = "sensor-1", IsAttached = true, SourceIp = "127.0.0.1", Now = TimeProvider.System.GetUtcNow() };
        const string Action = "iot:Publish";
        const string Resource = "arn:aws:iot:local:000000000000:topic/dt/sensor-1/telemetry";
        if (PolicyEvaluator.Evaluate([policy], Action, Resource, context) != PolicyDecision.Allow)
        {
            Console.Error.WriteLine("the policy does not allow the request: the benchmark is wrong");
            return 1;
        }

        var scratch = Measure(iterations / 10, () => PolicyEvaluator.Evaluate([policy], Action, Resource, context));
        // The gateway's own per-connection access object, as a publish on a live connection uses it.
        var access = Gateway.Security.ConnectionAccess.ForCertificate("sensor-1", "bench", null, "arn:aws:iot:local:000000000000:", new Gateway.Security.ConnectionAccess.Grant([policy], context, TimeProvider.System));
        var cached = Measure(iterations, () => access.MayPublish("dt/sensor-1/telemetry") ? PolicyDecision.Allow : PolicyDecision.ImplicitDeny);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"== policy: from scratch {scratch:0} ns/decision, warm cache {cached:0} ns/decision"));
        return 0;
    }

    private static double Measure(int iterations, Func<PolicyDecision> decide)
    {
        for (var i = 0; i < 10_000; i++)
        {
            decide();
        }

        var clock = Stopwatch.StartNew();
        for (var i = 0; i < iterations; i++)
        {
            decide();
        }

        return clock.Elapsed.TotalNanoseconds / iterations;
    }
}
