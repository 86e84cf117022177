using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Provisioning;
using static OrleansIot.Grains.Provisioning.ProvisioningTemplate.OverrideSetting;

namespace OrleansIot.Tests.Provisioning;

/// <summary>The provisioning template engine alone: AWS's published templates, built-in parameters, intrinsics, override settings.</summary>
[Trait("Category", "Unit")]
public sealed class ProvisioningTemplateTests
{
    private const string CertificateId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    private static readonly Dictionary<string, string> OnlyId = new() { [ProvisioningTemplate.CertificateIdParameter] = CertificateId };

    private static string Example(string file) => File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "Provisioning", "AwsExamples", file));

    private static string Template(string resources, string parameters = "{}", string extra = "") =>
        $$"""{"Parameters": {{parameters}}, "Resources": {{resources}} {{extra}} }""";

    private const string Thing = """{"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Name"}}}}""";

    [Fact]
    public void AwsFleetSample_AsPublished_ProvisionsWithTheDevicesParameters()
    {
        var template = ProvisioningTemplate.Parse(Example("fleet-provisioning-template.json"));

        // The device passes what the sample passes; AWS::IoT::Certificate::Id is declared but filled by the platform.
        var plan = template.Evaluate(new Dictionary<string, string> { ["SerialNumber"] = "7", ["DeviceLocation"] = "Seattle" }, OnlyId);

        Assert.Equal("ThingPrefix_7", plan.Thing!.Name);
        Assert.Equal(new Dictionary<string, string> { ["version"] = "v1", ["serialNumber"] = "serialNumber" }, plan.Thing.Attributes);
        Assert.Equal((Merge, Replace, DoNothing), (plan.Thing.AttributesOverride, plan.Thing.TypeOverride, plan.Thing.GroupsOverride));
        Assert.Equal("ACTIVE", plan.CertificateStatus);   // the sample writes "Active"
        var policy = Assert.Single(plan.Policies);
        Assert.Null(policy.Name);
        Assert.Equal("*", (string)JsonNode.Parse(policy.Document!)!["Statement"]![0]!["Resource"]!);
        Assert.Equal("https://example.aws", plan.DeviceConfiguration["LocationUrl"]);
        Assert.Equal("https://www.example.com/test-site", plan.DeviceConfiguration["FallbackUrl"]);
    }

    [Fact]
    public void AwsJitpExample_AsPublished_TakesItsValuesFromTheCertificateSubject()
    {
        var body = (string)JsonNode.Parse(Example("jitp-registration-config.json"))!["templateBody"]!;
        using var certificate = SelfSigned("CN=bulb-1, SERIALNUMBER=SN-9, C=US, O=Acme");

        var plan = ProvisioningTemplate.Parse(body).Evaluate(new Dictionary<string, string>(), ProvisioningTemplate.BuiltInsOf(certificate));

        Assert.Equal("bulb-1", plan.Thing!.Name);
        Assert.Equal("lightBulb-versionA", plan.Thing.TypeName);
        Assert.Equal(["v1-lightbulbs", "US"], plan.Thing.Groups!);
        Assert.Equal("SN-9", plan.Thing.Attributes!["serialNumber"]);
        Assert.Equal("ACTIVE", plan.CertificateStatus);
        Assert.Contains("iot:Publish", Assert.Single(plan.Policies).Document!, StringComparison.Ordinal);
    }

    [Fact]
    public void BuiltIns_AreReadFromTheSubject_AndTheIdIsTheCertificates()
    {
        using var certificate = SelfSigned("CN=d, C=DE, S=Bavaria, O=Acme, OU=Lamps, SERIALNUMBER=42, OID.2.5.4.46=q1");

        var builtIns = ProvisioningTemplate.BuiltInsOf(certificate);

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(certificate.RawData)), builtIns["AWS::IoT::Certificate::Id"]);
        Assert.Equal(
            [("CommonName", "d"), ("Country", "DE"), ("DistinguishedNameQualifier", "q1"), ("Organization", "Acme"), ("OrganizationalUnit", "Lamps"), ("SerialNumber", "42"), ("StateName", "Bavaria")],
            builtIns.Where(b => !b.Key.EndsWith("::Id", StringComparison.Ordinal)).Select(b => (b.Key["AWS::IoT::Certificate::".Length..], b.Value)).Order());
    }

    [Fact]
    public void ABuiltIn_IsAvailableWithoutBeingDeclared_AndTheDeviceCannotOverrideIt()
    {
        var template = ProvisioningTemplate.Parse(Template(
            """{"thing": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Sub": "t-${AWS::IoT::Certificate::Id}"}}}}"""));

        var plan = template.Evaluate(new Dictionary<string, string> { ["AWS::IoT::Certificate::Id"] = "forged" }, OnlyId);

        Assert.Equal("t-" + CertificateId, plan.Thing!.Name);
    }

    public static TheoryData<string, string> RefusedAtEvaluation => new()
    {
        { Template(Thing, """{"Name": {"Type": "String"}}"""), "Parameter Name has no value and no default" },
        { Template("""{"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "n"}}}""", """{"AWS::IoT::Certificate::Country": {"Type": "String"}}"""), "the certificate's subject has no such field" },
        { Template("""{"c": {"Type": "AWS::IoT::Certificate", "Properties": {"Status": "REVOKED"}}}"""), "expected ACTIVE or INACTIVE" },
        { Template("""{"c": {"Type": "AWS::IoT::Certificate", "Properties": {"CertificateId": "someone-elses"}}}"""), "the device's own certificate" },
        { Template("""{"p": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "a", "PolicyDocument": "{}"}}}"""), "PolicyName or PolicyDocument" },
        { Template("""{"p": {"Type": "AWS::IoT::Policy", "Properties": {}}}"""), "PolicyName or PolicyDocument" },
        { Template("""{"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::FindInMap": ["M", "nowhere", "k"]}}}}""", "{}", """, "Mappings": {"M": {"here": {"k": "v"}}}"""), "mapping M has no nowhere.k" },
        { Template("""{"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Ref": "Undeclared"}}}}"""), "Ref to unknown parameter Undeclared" },
        { Template("""{"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": {"Fn::Select": ["5", ["a"]]}}}}"""), "outside the list" },
    };

    [Theory]
    [MemberData(nameof(RefusedAtEvaluation))]
    public void ABadRequest_IsInvalidParameters_NamingTheProblem(string body, string problem)
    {
        var error = Assert.Throws<ApiException>(() => ProvisioningTemplate.Parse(body).Evaluate(new Dictionary<string, string>(), OnlyId));

        Assert.Equal(("InvalidParameters", 400), (error.Code, error.Status));
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    public static TheoryData<string, string> RefusedWhenStored => new()
    {
        { Template(Thing, """{"AWS::IoT::Certificate::ShoeSize": {"Type": "String"}}"""), "not a built-in parameter" },
        { Template("""{"x": {"Type": "AWS::S3::Bucket"}}"""), "has type 'AWS::S3::Bucket'" },
        { Template("""{"t": {"Type": "AWS::IoT::Thing", "Properties": {}, "OverrideSettings": {"ThingTypeName": "MERGE"}}}"""), "OverrideSettings ThingTypeName" },
        { Template("""{"t": {"Type": "AWS::IoT::Thing", "Properties": {}, "OverrideSettings": {"AttributePayload": "SOMETIMES"}}}"""), "expected DO_NOTHING, REPLACE, FAIL" },
        { Template("""{"p": {"Type": "AWS::IoT::Policy", "Properties": {}, "OverrideSettings": {"Status": "REPLACE"}}}"""), "its type does not take" },
        { Template("""{"a": {"Type": "AWS::IoT::Thing"}, "b": {"Type": "AWS::IoT::Thing"}}"""), "at most one thing" },
        { """{"Parameters": {}}""", "needs a Resources object" },
        { "[1]", "must be a JSON object" },
        { "{", "not valid JSON" },
        { Template(Thing, "{}", $$""", "Pad": "{{new string('x', ProvisioningTemplate.MaxBodyBytes)}}" """), "larger than" },
    };

    [Theory]
    [MemberData(nameof(RefusedWhenStored))]
    public void ABadTemplate_IsRefusedWhenStored_NamingTheProblem(string body, string problem)
    {
        var error = Assert.Throws<ApiException>(() => ProvisioningTemplate.Parse(body));

        Assert.Equal(("InvalidRequestException", 400), (error.Code, error.Status));
        Assert.Contains(problem, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OverrideKeys_TakeEitherOfAwsSpellings_AndSeveralPoliciesAreAttached()
    {
        var template = ProvisioningTemplate.Parse(Template(
            """
            {"t": {"Type": "AWS::IoT::Thing", "Properties": {"ThingName": "n", "ThingGroups": {"Fn::Split": [",", "a,b"]}},
                   "OverrideSettings": {"ATTRIBUTE_PAYLOAD": "REPLACE", "THING_GROUPS": "MERGE", "THING_TYPE_NAME": "FAIL"}},
             "p1": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyName": "existing"}},
             "p2": {"Type": "AWS::IoT::Policy", "Properties": {"PolicyDocument": {"Version": "2012-10-17", "Statement": []}}}}
            """));

        var plan = template.Evaluate(new Dictionary<string, string>(), OnlyId);

        Assert.Equal((Replace, Fail, Merge), (plan.Thing!.AttributesOverride, plan.Thing.TypeOverride, plan.Thing.GroupsOverride));
        Assert.Equal(["a", "b"], plan.Thing.Groups!);
        Assert.Null(plan.Thing.Attributes);   // the template does not set them: an existing thing keeps its own
        Assert.Equal(["existing", null], plan.Policies.Select(p => p.Name));
        Assert.Null(plan.CertificateStatus);   // no certificate resource: the default (ACTIVE) applies
    }

    private static X509Certificate2 SelfSigned(string subject)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        return new CertificateRequest(subject, key, HashAlgorithmName.SHA256).CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(1));
    }
}
