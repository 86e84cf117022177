using System.Reflection;
using Microsoft.Extensions.Logging;

namespace OrleansIot.Tests.Hosting;

/// <summary>
/// Every log message of ours has its own event id (Gateway 1001–1999, Grains 2001–2999, Silo 3001–3999), so operators
/// can filter and alert on one message across versions and reworded texts.
/// </summary>
[Trait("Category", "Unit")]
public sealed class LogEventIdTests
{
    private static readonly (Assembly Assembly, int From)[] Projects =
    [
        (typeof(OrleansIot.Gateway.Http.ApiAccess).Assembly, 1001),
        (typeof(OrleansIot.Grains.IotGrainsHosting).Assembly, 2001),
        (typeof(OrleansIot.Silo.Hosting.IotSiloHost).Assembly, 3001),
    ];

    [Fact]
    public void EveryLogMessage_HasAnEventIdOfItsOwn_InItsProjectsRange()
    {
        var seen = new Dictionary<int, string>();
        var problems = new List<string>();
        foreach (var (assembly, from) in Projects)
        {
            foreach (var method in assembly.GetTypes().SelectMany(t => t.GetMethods(BindingFlags.Static | BindingFlags.NonPublic | BindingFlags.Public | BindingFlags.DeclaredOnly)))
            {
                if (method.GetCustomAttribute<LoggerMessageAttribute>() is not { } message)
                {
                    continue;
                }

                var name = $"{method.DeclaringType!.Name}.{method.Name}";
                if (message.EventId < from || message.EventId >= from + 999)
                {
                    problems.Add($"{name}: event id {message.EventId} is outside {from}–{from + 998}");
                }
                else if (!seen.TryAdd(message.EventId, name))
                {
                    problems.Add($"{name}: event id {message.EventId} is also {seen[message.EventId]}'s");
                }
            }
        }

        Assert.True(seen.Count > 50, $"{seen.Count} log messages found");
        Assert.Empty(problems);
    }
}
