using System.Globalization;
using OrleansIot.Gateway.Security;
using OrleansIot.Grains.Abstractions.Policies;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Security;

/// <summary>A connection's decisions: cached, except those that depend on the time of the request.</summary>
public sealed class ConnectionAccessTests
{
    private const string Prefix = "arn:aws:iot:local:000000000000:";

    private static ConnectionAccess For(string document) =>
        ConnectionAccess.ForCertificate("dev-1", "cert", null, Prefix, new ConnectionAccess.Grant([IotPolicy.Parse(document)], new PolicyContext { ClientId = "dev-1" }));

    [Fact]
    public void Decisions_FollowThePolicy_PerActionAndTopic()
    {
        var access = For("""{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/dt/${iot:ClientId}/*"}]}""");

        Assert.True(access.MayPublish("dt/dev-1/t"));
        Assert.True(access.MayPublish("dt/dev-1/t"));   // from the cache
        Assert.False(access.MayPublish("dt/dev-2/t"));
        Assert.False(access.MayReceive("dt/dev-1/t"));  // another action
        Assert.False(access.MayRetain("dt/dev-1/t"));
    }

    [Fact]
    public async Task ADecisionOnTheTime_IsTakenAfreshEachTime()
    {
        // Two seconds: AWS's times have whole seconds, so the allowed window is one to two seconds long.
        var until = DateTimeOffset.UtcNow.AddSeconds(2).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var access = For("""{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":""" + $"\"{until}\"" + "}}}]}");

        Assert.True(access.MayPublish("a/b"));
        await Eventually.True(() => Task.FromResult(!access.MayPublish("a/b")), "the allow to end at " + until, TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void DevelopmentAccess_AllowsEverything()
    {
        var access = ConnectionAccess.Development("dev-1");
        Assert.True(access.MayConnect() && access.MayPublish("x") && access.MaySubscribe("#") && access.MayReceive("y"));
        Assert.Equal("anonymous", access.Principal);
    }
}
