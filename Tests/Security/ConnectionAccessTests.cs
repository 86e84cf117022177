using System.Globalization;
using Microsoft.Extensions.Time.Testing;
using OrleansIot.Gateway.Security;
using OrleansIot.Grains.Abstractions.Policies;

namespace OrleansIot.Tests.Security;

/// <summary>A connection's decisions: cached, except those that depend on the time of the request.</summary>
[Trait("Category", "Unit")]
public sealed class ConnectionAccessTests
{
    private const string Prefix = "arn:aws:iot:local:000000000000:";

    private static ConnectionAccess For(string document, TimeProvider? clock = null)
    {
        clock ??= new FakeTimeProvider();
        return ConnectionAccess.ForCertificate("dev-1", "cert", null, Prefix,
            new ConnectionAccess.Grant([IotPolicy.Parse(document)], new PolicyContext { ClientId = "dev-1", Now = clock.GetUtcNow() }, clock));
    }

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
    public void ADecisionOnTheTime_IsTakenAfreshEachTime()
    {
        var clock = new FakeTimeProvider();
        var until = clock.GetUtcNow().AddSeconds(2).ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        var access = For("""{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"DateLessThan":{"aws:CurrentTime":""" + $"\"{until}\"" + "}}}]}", clock);

        Assert.True(access.MayPublish("a/b"));
        Assert.True(access.MayPublish("a/b"));   // asked again at the same time: still allowed
        clock.Advance(TimeSpan.FromSeconds(2));
        Assert.False(access.MayPublish("a/b"));  // the same question at the new time, not a cached answer
    }

    [Fact]
    public void DevelopmentAccess_AllowsEverything()
    {
        var access = ConnectionAccess.Development("dev-1");
        Assert.True(access.MayConnect() && access.MayPublish("x") && access.MaySubscribe("#") && access.MayReceive("y"));
        Assert.Equal("anonymous", access.Principal);
    }
}
