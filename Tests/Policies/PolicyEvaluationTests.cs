using OrleansIot.Grains.Abstractions.Policies;

namespace OrleansIot.Tests.Policies;

/// <summary>AWS IoT policy evaluation, table-driven: wildcards, variables, deny precedence, conditions, malformed documents.</summary>
[Trait("Category", "Unit")]
public sealed class PolicyEvaluationTests
{
    private const string Allow = "Allow";
    private const string Implicit = "ImplicitDeny";
    private const string Explicit = "ExplicitDeny";

    private static string Arn(string resource) => $"arn:aws:iot:local:000000000000:{resource}";

    /// <summary>The time of every request here (aws:CurrentTime, aws:EpochTime): fixed, so no case depends on today's date.</summary>
    private static readonly DateTimeOffset RequestTime = DateTimeOffset.FromUnixTimeSeconds(1_800_000_000);

    /// <summary>A device connected as thing sensor-1 with its certificate.</summary>
    private static readonly PolicyContext Thing = new()
    {
        Now = RequestTime,
        ClientId = "sensor-1",
        SourceIp = "10.1.2.3",
        ThingName = "sensor-1",
        ThingTypeName = "Thermo",
        ThingAttributes = new Dictionary<string, string> { ["floor"] = "3", ["color"] = "red" },
        IsAttached = true,
        Certificate = new Dictionary<string, IReadOnlyList<string>>
        {
            ["Subject.CommonName"] = ["sensor-1"],
            ["Subject.Organization"] = ["Acme", "AcmeEU"],
            ["Issuer.CommonName"] = ["Acme CA"],
        },
        ConnectAttributes = ["PersistentConnect"],
    };

    /// <summary>A client that is no registered thing, with special characters in its id.</summary>
    private static readonly PolicyContext Stranger = new() { ClientId = "dev+1", SourceIp = "192.168.0.9", IsAttached = false, Now = RequestTime };

    private static readonly PolicyContext Starry = new() { ClientId = "a*", SourceIp = "127.0.0.1", Now = RequestTime };

    private static PolicyContext Context(string name) => name switch
    {
        "thing" => Thing,
        "stranger" => Stranger,
        _ => Starry,
    };

    private static string Statement(string effect, string action, string resource, string? condition = null) =>
        $$"""{"Effect":"{{effect}}","Action":{{action}},"Resource":{{resource}}{{(condition is null ? "" : ",\"Condition\":" + condition)}}}""";

    private static string Policy(params string[] statements) => $$"""{"Version":"2012-10-17","Statement":[{{string.Join(",", statements)}}]}""";

    public static TheoryData<string, string, string, string, string, string> Cases => new()
    {
        // description, policy, action, resource, context, expected
        { "default deny: nothing allows it", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/other\"")), "iot:Publish", Arn("topic/a"), "thing", Implicit },
        { "exact topic allowed", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a/b\"")), "iot:Publish", Arn("topic/a/b"), "thing", Allow },
        { "another action is not allowed by it", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a/b\"")), "iot:Receive", Arn("topic/a/b"), "thing", Implicit },
        { "explicit deny wins in one policy", Policy(Statement("Allow", "\"iot:*\"", "\"*\""), Statement("Deny", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/secret\"")), "iot:Publish", Arn("topic/secret"), "thing", Explicit },
        { "deny of another resource leaves the allow", Policy(Statement("Allow", "\"iot:*\"", "\"*\""), Statement("Deny", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/secret\"")), "iot:Publish", Arn("topic/open"), "thing", Allow },
        { "* spans levels", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a/*\"")), "iot:Publish", Arn("topic/a/b/c/d"), "thing", Allow },
        { "* matches an empty run", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a*\"")), "iot:Publish", Arn("topic/a"), "thing", Allow },
        { "? is exactly one character", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a/?\"")), "iot:Publish", Arn("topic/a/b"), "thing", Allow },
        { "? is not two characters", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a/?\"")), "iot:Publish", Arn("topic/a/bc"), "thing", Implicit },
        { "? matches '/' too", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a?b\"")), "iot:Publish", Arn("topic/a/b"), "thing", Allow },
        { "+ is literal: the filter a/+ itself", Policy(Statement("Allow", "\"iot:Subscribe\"", "\"arn:aws:iot:*:*:topicfilter/a/+\"")), "iot:Subscribe", Arn("topicfilter/a/+"), "thing", Allow },
        { "+ is literal: not a/b", Policy(Statement("Allow", "\"iot:Subscribe\"", "\"arn:aws:iot:*:*:topicfilter/a/+\"")), "iot:Subscribe", Arn("topicfilter/a/b"), "thing", Implicit },
        { "# is literal: not a/b/c", Policy(Statement("Allow", "\"iot:Subscribe\"", "\"arn:aws:iot:*:*:topicfilter/a/#\"")), "iot:Subscribe", Arn("topicfilter/a/b/c"), "thing", Implicit },
        { "# is literal: the filter a/#", Policy(Statement("Allow", "\"iot:Subscribe\"", "\"arn:aws:iot:*:*:topicfilter/a/#\"")), "iot:Subscribe", Arn("topicfilter/a/#"), "thing", Allow },
        { "topic/* does not cover topicfilter/", Policy(Statement("Allow", "\"iot:Subscribe\"", "\"arn:aws:iot:*:*:topic/*\"")), "iot:Subscribe", Arn("topicfilter/a"), "thing", Implicit },
        { "iot:* covers every action", Policy(Statement("Allow", "\"iot:*\"", "\"*\"")), "iot:Connect", Arn("client/x"), "thing", Allow },
        { "actions are case-insensitive", Policy(Statement("Allow", "\"IOT:publish\"", "\"*\"")), "iot:Publish", Arn("topic/a"), "thing", Allow },
        { "an action list", Policy(Statement("Allow", "[\"iot:Publish\",\"iot:Receive\"]", "\"*\"")), "iot:Receive", Arn("topic/a"), "thing", Allow },
        { "a resource list", Policy(Statement("Allow", "\"iot:Publish\"", "[\"arn:aws:iot:*:*:topic/x\",\"arn:aws:iot:*:*:topic/y\"]")), "iot:Publish", Arn("topic/y"), "thing", Allow },
        { "resources are case-sensitive", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/A\"")), "iot:Publish", Arn("topic/a"), "thing", Implicit },
        { "an AWS region and account in the ARN still match", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:us-east-1:123456789012:topic/a\"")), "iot:Publish", Arn("topic/a"), "thing", Allow },
        { "* as the whole resource", Policy(Statement("Allow", "\"iot:Publish\"", "\"*\"")), "iot:Publish", Arn("topic/anything/at/all"), "thing", Allow },
        { "${iot:ClientId}: own client id", Policy(Statement("Allow", "\"iot:Connect\"", "\"arn:aws:iot:*:*:client/${iot:ClientId}\"")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "${iot:ClientId}: not another", Policy(Statement("Allow", "\"iot:Connect\"", "\"arn:aws:iot:*:*:client/${iot:ClientId}\"")), "iot:Connect", Arn("client/sensor-2"), "thing", Implicit },
        { "thing name: own shadow", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*\"")), "iot:Publish", Arn("topic/$aws/things/sensor-1/shadow/update"), "thing", Allow },
        { "thing name: not another thing's shadow", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*\"")), "iot:Publish", Arn("topic/$aws/things/sensor-2/shadow/update"), "thing", Implicit },
        { "thing name: not substituted without a thing", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/t/${iot:Connection.Thing.ThingName}\"")), "iot:Publish", Arn("topic/t/"), "stranger", Implicit },
        { "unsubstituted variable matches only itself, never a wildcard", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/t/${iot:Connection.Thing.ThingName}\"")), "iot:Publish", Arn("topic/t/x"), "stranger", Implicit },
        { "thing type variable", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/types/${iot:Connection.Thing.ThingTypeName}\"")), "iot:Publish", Arn("topic/types/Thermo"), "thing", Allow },
        { "attribute variable", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/floor/${iot:Connection.Thing.Attributes[floor]}/*\"")), "iot:Publish", Arn("topic/floor/3/temp"), "thing", Allow },
        { "attribute variable: another floor", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/floor/${iot:Connection.Thing.Attributes[floor]}/*\"")), "iot:Publish", Arn("topic/floor/4/temp"), "thing", Implicit },
        { "missing attribute: not substituted", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/b/${iot:Connection.Thing.Attributes[building]}\"")), "iot:Publish", Arn("topic/b/"), "thing", Implicit },
        { "certificate common name", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/cn/${iot:Certificate.Subject.CommonName}\"")), "iot:Publish", Arn("topic/cn/sensor-1"), "thing", Allow },
        { "certificate second value by index", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/org/${iot:Certificate.Subject.Organization.1}\"")), "iot:Publish", Arn("topic/org/AcmeEU"), "thing", Allow },
        { "certificate first value by default", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/org/${iot:Certificate.Subject.Organization}\"")), "iot:Publish", Arn("topic/org/Acme"), "thing", Allow },
        { "issuer field", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/by/${iot:Certificate.Issuer.CommonName}\"")), "iot:Publish", Arn("topic/by/Acme CA"), "thing", Allow },
        { "a client id with '+' is not substituted", Policy(Statement("Allow", "\"iot:Connect\"", "\"arn:aws:iot:*:*:client/${iot:ClientId}\"")), "iot:Connect", Arn("client/dev+1"), "stranger", Implicit },
        { "a client id with '*' is not substituted (no wildcard leak)", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/${iot:ClientId}\"")), "iot:Publish", Arn("topic/abc"), "starry", Implicit },
        { "${*} is a literal star", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a${*}\"")), "iot:Publish", Arn("topic/a*"), "thing", Allow },
        { "${*} is not a wildcard", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a${*}\"")), "iot:Publish", Arn("topic/ab"), "thing", Implicit },
        { "${?} is a literal question mark", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/q${?}\"")), "iot:Publish", Arn("topic/q?"), "thing", Allow },
        { "${$} is a literal dollar", Policy(Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/${$}{x}\"")), "iot:Publish", Arn("topic/${x}"), "thing", Allow },
        { "StringEquals on the client id", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEquals\":{\"iot:ClientId\":\"sensor-1\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "StringEquals that does not hold", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEquals\":{\"iot:ClientId\":\"other\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Implicit },
        { "StringEquals: several values, any", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEquals\":{\"iot:ClientId\":[\"x\",\"sensor-1\"]}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "StringNotEquals: a missing key holds", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringNotEquals\":{\"iot:Connection.Thing.ThingTypeName\":\"Camera\"}}")), "iot:Connect", Arn("client/dev+1"), "stranger", Allow },
        { "StringNotEquals: none of the values", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringNotEquals\":{\"iot:ClientId\":[\"a\",\"sensor-1\"]}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Implicit },
        { "StringLike with wildcards", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringLike\":{\"iot:ClientId\":\"sensor-*\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "StringNotLike", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringNotLike\":{\"iot:ClientId\":\"sensor-*\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Implicit },
        { "StringEqualsIgnoreCase", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEqualsIgnoreCase\":{\"iot:Connection.Thing.ThingTypeName\":\"THERMO\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "a missing key fails a positive operator", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEquals\":{\"iot:Connection.Thing.ThingTypeName\":\"Thermo\"}}")), "iot:Connect", Arn("client/dev+1"), "stranger", Implicit },
        { "IfExists: a missing key holds", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEqualsIfExists\":{\"iot:Connection.Thing.ThingTypeName\":\"Thermo\"}}")), "iot:Connect", Arn("client/dev+1"), "stranger", Allow },
        { "IfExists: a present key is checked", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEqualsIfExists\":{\"iot:Connection.Thing.ThingTypeName\":\"Camera\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Implicit },
        { "Bool IsAttached true", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"Bool\":{\"iot:Connection.Thing.IsAttached\":\"true\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "Bool IsAttached: not attached", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"Bool\":{\"iot:Connection.Thing.IsAttached\":[true]}}")), "iot:Connect", Arn("client/dev+1"), "stranger", Implicit },
        { "Null true: the key is missing", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"Null\":{\"iot:Connection.Thing.ThingTypeName\":\"true\"}}")), "iot:Connect", Arn("client/dev+1"), "stranger", Allow },
        { "Null false: the key is present", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"Null\":{\"iot:Connection.Thing.ThingTypeName\":\"false\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "Null true when it is present", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"Null\":{\"iot:Connection.Thing.ThingTypeName\":\"true\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Implicit },
        { "IpAddress in a CIDR", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "IpAddress outside", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"IpAddress\":{\"aws:SourceIp\":\"10.0.0.0/8\"}}")), "iot:Connect", Arn("client/dev+1"), "stranger", Implicit },
        { "NotIpAddress", Policy(Statement("Deny", "\"iot:*\"", "\"*\"", "{\"NotIpAddress\":{\"aws:SourceIp\":[\"10.0.0.0/8\",\"127.0.0.1\"]}}"), Statement("Allow", "\"iot:*\"", "\"*\"")), "iot:Connect", Arn("client/dev+1"), "stranger", Explicit },
        { "NumericLessThan on an attribute", Policy(Statement("Allow", "\"iot:Publish\"", "\"*\"", "{\"NumericLessThan\":{\"iot:Connection.Thing.Attributes[floor]\":5}}")), "iot:Publish", Arn("topic/a"), "thing", Allow },
        { "NumericGreaterThanEquals that does not hold", Policy(Statement("Allow", "\"iot:Publish\"", "\"*\"", "{\"NumericGreaterThanEquals\":{\"iot:Connection.Thing.Attributes[floor]\":\"4\"}}")), "iot:Publish", Arn("topic/a"), "thing", Implicit },
        { "ForAnyValue over connect attributes", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"ForAnyValue:StringEquals\":{\"iot:ConnectAttributes\":[\"PersistentConnect\"]}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "ForAllValues with a value outside the set", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"ForAllValues:StringEquals\":{\"iot:ConnectAttributes\":[\"LastWill\"]}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Implicit },
        { "ForAllValues with no values holds", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"ForAllValues:StringEquals\":{\"iot:ConnectAttributes\":[\"LastWill\"]}}")), "iot:Connect", Arn("client/dev+1"), "stranger", Allow },
        { "certificate list with ForAnyValue", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"ForAnyValue:StringEquals\":{\"iot:Certificate.Subject.Organization.List\":[\"AcmeEU\"]}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "two keys in one operator: both must hold", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEquals\":{\"iot:ClientId\":\"sensor-1\",\"iot:Connection.Thing.ThingTypeName\":\"Camera\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Implicit },
        { "two operators: both must hold", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEquals\":{\"iot:ClientId\":\"sensor-1\"},\"Bool\":{\"iot:Connection.Thing.IsAttached\":\"true\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "a variable in a condition value", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringEquals\":{\"iot:Connection.Thing.ThingName\":\"${iot:ClientId}\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "a deny whose condition fails does not apply", Policy(Statement("Allow", "\"iot:*\"", "\"*\""), Statement("Deny", "\"iot:*\"", "\"*\"", "{\"Bool\":{\"iot:Connection.Thing.IsAttached\":\"false\"}}")), "iot:Publish", Arn("topic/a"), "thing", Allow },
        { "a deny whose condition holds", Policy(Statement("Allow", "\"iot:*\"", "\"*\""), Statement("Deny", "\"iot:*\"", "\"*\"", "{\"Bool\":{\"iot:Connection.Thing.IsAttached\":\"false\"}}")), "iot:Publish", Arn("topic/a"), "stranger", Explicit },
        { "DateLessThan the current time", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"DateLessThan\":{\"aws:CurrentTime\":\"2100-01-01T00:00:00Z\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
        { "DateGreaterThan in the future", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"DateGreaterThan\":{\"aws:CurrentTime\":\"2100-01-01T00:00:00Z\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Implicit },
        { "ArnLike", Policy(Statement("Allow", "\"iot:Connect\"", "\"*\"", "{\"StringLike\":{\"iot:Certificate.Issuer.CommonName\":\"Acme*\"}}")), "iot:Connect", Arn("client/sensor-1"), "thing", Allow },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Decides(string description, string policy, string action, string resource, string context, string expected)
    {
        var decision = IotPolicy.Parse(policy).Evaluate(action, resource, Context(context));

        Assert.True(expected == decision.ToString(), $"{description}: expected {expected}, got {decision}");
    }

    [Fact]
    public void ADenyInAnyPolicyWins_AndNoPolicyMeansDeny()
    {
        var allow = IotPolicy.Parse(Policy(Statement("Allow", "\"iot:*\"", "\"*\"")));
        var deny = IotPolicy.Parse(Policy(Statement("Deny", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/x\"")));

        Assert.Equal(PolicyDecision.ExplicitDeny, PolicyEvaluator.Evaluate([allow, deny], "iot:Publish", Arn("topic/x"), Thing));
        Assert.Equal(PolicyDecision.Allow, PolicyEvaluator.Evaluate([allow, deny], "iot:Publish", Arn("topic/y"), Thing));
        Assert.Equal(PolicyDecision.ImplicitDeny, PolicyEvaluator.Evaluate([], "iot:Publish", Arn("topic/y"), Thing));
    }

    public static TheoryData<string, string> Malformed => new()
    {
        { "{not json", "not JSON" },
        { "[]", "must be a JSON object" },
        { """{"Version":"2020-01-01","Statement":[]}""", "Version must be" },
        { """{"Version":"2012-10-17","Statement":[]}""", "must not be empty" },
        { """{"Version":"2012-10-17"}""", "Statement is required" },
        { Policy("""{"Action":"iot:Publish","Resource":"*"}"""), "Effect is required" },
        { Policy("""{"Effect":"allow","Action":"iot:Publish","Resource":"*"}"""), "Effect must be" },
        { Policy("""{"Effect":"Allow","Resource":"*"}"""), "Action is required" },
        { Policy("""{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}"""), "is not an IoT action" },
        { Policy("""{"Effect":"Allow","Action":"iot:Publish"}"""), "Resource is required" },
        { Policy("""{"Effect":"Allow","Action":"iot:Publish","Resource":"topic/a"}"""), "is not an ARN" },
        { Policy("""{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:s3:::bucket/x"}"""), "is not an AWS IoT ARN" },
        { Policy("""{"Effect":"Allow","NotAction":"iot:Publish","Resource":"*"}"""), "Unknown field 'NotAction'" },
        { Policy("""{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Principal":"*"}"""), "Unknown field 'Principal'" },
        { Policy("""{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"StringSorta":{"iot:ClientId":"x"}}}"""), "unknown condition operator" },
        { Policy("""{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"NumericLessThan":{"iot:ClientId":"ten"}}}"""), "is not a valid value" },
        { Policy("""{"Effect":"Allow","Action":"iot:Publish","Resource":"*","Condition":{"Bool":{"iot:Connection.Thing.IsAttached":"yes"}}}"""), "is not a valid value" },
        { Policy("""{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/${iot:ClientId"}"""), "is not closed" },
        { Policy("""{"Effect":"Allow","Action":[],"Resource":"*"}"""), "must not be empty" },
        { Policy(string.Join(",", Enumerable.Repeat("""{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}""", 30))), "longer than 2048" },
    };

    [Theory]
    [MemberData(nameof(Malformed))]
    public void RefusesMalformedDocuments(string document, string message)
    {
        var error = Assert.Throws<MalformedPolicyException>(() => IotPolicy.Parse(document));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WhitespaceDoesNotCountTowardsTheLimit()
    {
        var statement = Statement("Allow", "\"iot:Publish\"", "\"arn:aws:iot:*:*:topic/a\"");
        var padded = Policy(statement).Replace(",", ",          ", StringComparison.Ordinal) + new string(' ', 3000);

        Assert.Equal(PolicyDecision.Allow, IotPolicy.Parse(padded).Evaluate("iot:Publish", Arn("topic/a"), Thing));
    }
}
