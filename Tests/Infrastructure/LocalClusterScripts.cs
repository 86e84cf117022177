namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// Tests that run <c>deploy/local/cluster.sh</c> (three node processes and haproxy each): one at a time, so two such
/// clusters never share the two cores of a test machine.
/// </summary>
public static class LocalClusterScripts
{
    public const string Name = "local cluster scripts";
}
