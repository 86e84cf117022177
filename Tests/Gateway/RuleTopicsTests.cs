using Microsoft.Extensions.Logging.Abstractions;
using OrleansIot.Gateway.Telemetry;
using OrleansIot.Grains.Abstractions.Rules;

namespace OrleansIot.Tests.Gateway;

[Trait("Category", "Unit")]
public sealed class RuleTopicsTests
{
    private static TopicRule Rule(string name, string? pattern, bool disabled = false) =>
        new(name, $"SELECT * FROM '{pattern}'", null, "[]", null, disabled, "2016-03-23", DateTimeOffset.UnixEpoch, pattern);

    [Fact]
    public void BeforeTheCatalogWasRead_EveryTopicButThePlatformsGoesOnTheStream()
    {
        // A node may take publishes before its first read of the rules: none of those may miss a rule.
        var topics = new RuleTopics(null!, null!, TimeProvider.System, NullLogger<RuleTopics>.Instance);

        Assert.Equal(-1, topics.Version);
        Assert.True(topics.Wants("dt/room-7/telemetry"));
        Assert.False(topics.Wants("$aws/things/room-7/shadow/update"));
    }

    [Fact]
    public void TheFilters_AreTheEnabledRulesOnes_WithoutBasicIngest_EachOnce()
    {
        var set = new RuleSet(7, [
            Rule("a", "dt/+/telemetry"),
            Rule("b", "dt/+/telemetry"),
            Rule("c", "off/#", disabled: true),
            Rule("d", "$aws/rules/d"),
            Rule("e", null),
            Rule("f", "$aws/events/presence/+/+"),
        ]);

        Assert.Equal(["dt/+/telemetry", "$aws/events/presence/+/+"], RuleTopics.Filters(set));
    }
}
