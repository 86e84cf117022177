using OrleansIot.Grains.Abstractions.Routing;

namespace OrleansIot.Tests.Routing;

[Trait("Category", "Unit")]
public sealed class TopicFilterTests
{
    [Theory]
    // exact
    [InlineData("a/b", "a/b", true)]
    [InlineData("a/b", "a/c", false)]
    [InlineData("a/b", "a/b/c", false)]
    [InlineData("a/b/c", "a/b", false)]
    [InlineData("A/b", "a/b", false)]                // case-sensitive
    // single level
    [InlineData("a/+", "a/b", true)]
    [InlineData("a/+", "a/b/c", false)]
    [InlineData("a/+", "a", false)]
    [InlineData("a/+", "a/", true)]                  // an empty level is a level
    [InlineData("+/+", "/x", true)]
    [InlineData("+", "a", true)]
    [InlineData("+", "/a", false)]
    [InlineData("a/+/c", "a/b/c", true)]
    [InlineData("a/+/c", "a/b/d", false)]
    [InlineData("+/b/+", "a/b/c", true)]
    // multi level
    [InlineData("#", "a", true)]
    [InlineData("#", "a/b/c", true)]
    [InlineData("#", "/", true)]
    [InlineData("a/#", "a", true)]                   // "#" also matches the parent level (spec 4.7.1.2)
    [InlineData("a/#", "a/b", true)]
    [InlineData("a/#", "a/b/c/d", true)]
    [InlineData("a/#", "ab", false)]
    [InlineData("a/#", "b/a", false)]
    [InlineData("a/+/#", "a/b", true)]
    [InlineData("a/+/#", "a", false)]
    // '$' topics are not matched by a leading wildcard
    [InlineData("#", "$SYS/uptime", false)]
    [InlineData("+/uptime", "$SYS/uptime", false)]
    [InlineData("$SYS/#", "$SYS/uptime", true)]
    [InlineData("$aws/things/+/shadow/update", "$aws/things/t1/shadow/update", true)]
    [InlineData("$aws/things/+/shadow/#", "$aws/things/t1/shadow/name/n/get", true)]
    [InlineData("a/$b", "a/$b", true)]
    [InlineData("a/+", "a/$b", true)]                // only the first level is special
    public void Matches_FollowsTheMqttRules(string filter, string topic, bool expected)
    {
        Assert.Equal(expected, TopicFilter.Matches(filter, topic));
        var tree = new TopicTree<int>();
        tree.Add(filter, 1);
        var owners = new HashSet<int>();
        tree.Match(topic, owners);
        Assert.Equal(expected, owners.Contains(1));
    }

    [Theory]
    [InlineData("a/b", true)]
    [InlineData("#", true)]
    [InlineData("a/#", true)]
    [InlineData("+/a/+", true)]
    [InlineData("/", true)]
    [InlineData("", false)]
    [InlineData("a/#/b", false)]
    [InlineData("a#", false)]
    [InlineData("a/b#", false)]
    [InlineData("a+/b", false)]
    [InlineData("a/+b", false)]
    [InlineData("a\0b", false)]
    public void IsValidFilter(string filter, bool expected) => Assert.Equal(expected, TopicFilter.IsValidFilter(filter));

    [Theory]
    [InlineData("a/b", true)]
    [InlineData("/", true)]
    [InlineData("$aws/things/x/shadow/get", true)]
    [InlineData("", false)]
    [InlineData("a/+", false)]
    [InlineData("a/#", false)]
    [InlineData("a\0", false)]
    public void IsValidTopic(string topic, bool expected) => Assert.Equal(expected, TopicFilter.IsValidTopic(topic));

    [Fact]
    public void Tree_AgreesWithMatches_OnRandomFiltersAndTopics()
    {
        var random = new Random(1234);
        string[] words = ["a", "b", "c", "$x", ""];
        string Level(bool filter) => filter && random.Next(4) == 0 ? "+" : words[random.Next(words.Length)];
        string Make(bool filter)
        {
            var levels = Enumerable.Range(0, random.Next(1, 5)).Select(_ => Level(filter)).ToList();
            if (filter && random.Next(4) == 0)
            {
                levels.Add("#");
            }

            return string.Join('/', levels);
        }

        var filters = Enumerable.Range(0, 300).Select(_ => Make(filter: true)).Distinct().ToList();
        var tree = new TopicTree<string>();
        foreach (var f in filters)
        {
            tree.Add(f, f);
        }

        for (var i = 0; i < 2000; i++)
        {
            var topic = Make(filter: false);
            var owners = new HashSet<string>();
            tree.Match(topic, owners);
            var expected = filters.Where(f => TopicFilter.Matches(f, topic)).ToHashSet();
            Assert.True(expected.SetEquals(owners), $"topic '{topic}': tree {string.Join(",", owners)} vs {string.Join(",", expected)}");
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Tree_RemovesFiltersAndOwners_AndPrunes(bool indexOwners)
    {
        var tree = new TopicTree<string>(indexOwners);
        Assert.True(tree.Add("a/+/c", "n1"));
        Assert.False(tree.Add("a/+/c", "n1"));
        Assert.True(tree.Add("a/+/c", "n2"));
        Assert.True(tree.Add("a/#", "n1"));
        Assert.Equal(2, tree.FilterCount);

        Assert.True(tree.Remove("a/+/c", "n1"));
        Assert.False(tree.Remove("a/+/c", "n1"));
        Assert.False(tree.Remove("x/y", "n1"));
        var owners = new HashSet<string>();
        tree.Match("a/b/c", owners);
        Assert.Equal(["n1", "n2"], owners.Order());   // n1 still via a/#

        tree.RemoveOwner("n1");
        Assert.Equal(["a/+/c"], tree.FiltersOf("n2"));
        Assert.Empty(tree.FiltersOf("n1"));
        Assert.Equal(1, tree.FilterCount);
        tree.Remove("a/+/c", "n2");
        Assert.Equal(0, tree.FilterCount);
    }

    /// <summary>
    /// A tree that keeps each owner's filters (one per client, so a connect does not walk every client's filters)
    /// answers <c>FiltersOf</c>, <c>RemoveOwner</c> and matching as the walked tree does, through random adds and
    /// removes of owners holding one filter or many.
    /// </summary>
    [Fact]
    public void Tree_WithOwnersIndexed_AnswersAsTheWalkedTree()
    {
        var random = new Random(4321);
        var walked = new TopicTree<string>();
        var indexed = new TopicTree<string>(indexOwners: true);
        string[] filters = ["a/b", "a/+", "a/#", "cmd/dev1", "cmd/dev2", "$aws/things/x/shadow/#", "+/+", "#"];
        string[] owners = ["c1", "c2", "c3", "c4", "c5"];
        for (var i = 0; i < 5000; i++)
        {
            var owner = owners[random.Next(owners.Length)];
            var filter = filters[random.Next(filters.Length)];
            switch (random.Next(10))
            {
                case < 5:
                    Assert.Equal(walked.Add(filter, owner), indexed.Add(new string(filter.AsSpan()), owner));   // another instance, same text
                    break;
                case < 9:
                    Assert.Equal(walked.Remove(filter, owner), indexed.Remove(filter, owner));
                    break;
                default:
                    walked.RemoveOwner(owner);
                    indexed.RemoveOwner(owner);
                    break;
            }

            foreach (var o in owners)
            {
                Assert.Equal(walked.FiltersOf(o).Order(), indexed.FiltersOf(o).Order());
            }

            Assert.Equal(walked.FilterCount, indexed.FilterCount);
            var topic = new[] { "a/b", "cmd/dev1", "$aws/things/x/shadow/update", "z" }[random.Next(4)];
            HashSet<string> fromWalked = [], fromIndexed = [];
            walked.Match(topic, fromWalked);
            indexed.Match(topic, fromIndexed);
            Assert.True(fromWalked.SetEquals(fromIndexed), topic);
        }
    }
}
