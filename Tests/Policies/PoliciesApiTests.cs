using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Policies;

/// <summary>The policy control plane over HTTP with AWS's paths, shapes, limits and exception names.</summary>
[Collection(NodeCollection.Name)]
public sealed class PoliciesApiTests(NodeFixture node)
{
    private const string AllowPublish = """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Publish","Resource":"arn:aws:iot:*:*:topic/a"}]}""";

    private static StringContent Body(JsonNode json) => new(json.ToJsonString(), Encoding.UTF8, "application/json");

    private static string Name(string prefix) => $"{prefix}_{Guid.NewGuid():N}"[..24];

    private static string Cert() => "arn:aws:iot:us-east-1:123456789012:cert/" + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()) + Convert.ToHexStringLower(Guid.NewGuid().ToByteArray());

    [Fact]
    public async Task Policies_AreCreatedVersionedAndDeleted_AsAws()
    {
        var name = Name("p");
        var created = await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policies/{name}", Body(new JsonObject { ["policyDocument"] = AllowPublish })));
        Assert.Equal("1", (string)created["policyVersionId"]!);
        Assert.EndsWith($":policy/{name}", (string)created["policyArn"]!, StringComparison.Ordinal);
        await ApiAssert.ProblemAsync(await node.Http.PostAsync($"/api/policies/{name}", Body(new JsonObject { ["policyDocument"] = AllowPublish })), HttpStatusCode.Conflict, "ResourceAlreadyExistsException");

        for (var v = 2; v <= 5; v++)
        {
            var version = await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policies/{name}/version?setAsDefault={v == 3}", Body(new JsonObject { ["policyDocument"] = AllowPublish.Replace("topic/a", $"topic/v{v}", StringComparison.Ordinal) })));
            Assert.Equal(v.ToString(System.Globalization.CultureInfo.InvariantCulture), (string)version["policyVersionId"]!);
        }

        await ApiAssert.ProblemAsync(await node.Http.PostAsync($"/api/policies/{name}/version", Body(new JsonObject { ["policyDocument"] = AllowPublish })), HttpStatusCode.Conflict, "VersionsLimitExceededException");
        var policy = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/policies/{name}"));
        Assert.Equal("3", (string)policy["defaultVersionId"]!);
        Assert.Contains("topic/v3", (string)policy["policyDocument"]!, StringComparison.Ordinal);
        var versions = (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/policies/{name}/version")))["policyVersions"]!.AsArray();
        Assert.Equal(["5", "4", "3", "2", "1"], versions.Select(v => (string)v!["versionId"]!));
        Assert.Equal(["3"], versions.Where(v => (bool)v!["isDefaultVersion"]!).Select(v => (string)v!["versionId"]!));

        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/policies/{name}/version/3"), HttpStatusCode.Conflict, "DeleteConflictException");
        await ApiAssert.OkAsync(await node.Http.PatchAsync($"/api/policies/{name}/version/1", null));
        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/policies/{name}"), HttpStatusCode.Conflict, "DeleteConflictException");   // other versions left
        foreach (var v in new[] { "2", "3", "4", "5" })
        {
            await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/policies/{name}/version/{v}"));
        }

        var listed = (await ApiAssert.OkAsync(await node.Http.GetAsync("/api/policies")))["policies"]!.AsArray();
        Assert.Contains(listed, p => (string)p!["policyName"]! == name);
        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/policies/{name}"));
        await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/policies/{name}"), HttpStatusCode.NotFound, "ResourceNotFoundException");
        Assert.DoesNotContain((await ApiAssert.OkAsync(await node.Http.GetAsync("/api/policies")))["policies"]!.AsArray(), p => (string)p!["policyName"]! == name);
    }

    [Theory]
    [InlineData("{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Publish\",\"Resource\":\"topic/a\"}]}")]
    [InlineData("not json")]
    [InlineData("{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"NotAction\":\"iot:Publish\",\"Resource\":\"*\"}]}")]
    public async Task MalformedDocuments_AreRefused_AndNothingIsStored(string document)
    {
        var name = Name("bad");

        await ApiAssert.ProblemAsync(await node.Http.PostAsync($"/api/policies/{name}", Body(new JsonObject { ["policyDocument"] = document })), HttpStatusCode.BadRequest, "MalformedPolicyException");

        await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/policies/{name}"), HttpStatusCode.NotFound, "ResourceNotFoundException");
    }

    [Fact]
    public async Task Attachments_ToCertificatesAndGroups_MakeTheEffectivePolicies_InheritedDownGroups()
    {
        var (onCert, onParent, onChild, unrelated) = (Name("cert"), Name("parent"), Name("child"), Name("other"));
        foreach (var p in new[] { onCert, onParent, onChild, unrelated })
        {
            await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policies/{p}", Body(new JsonObject { ["policyDocument"] = AllowPublish })));
        }

        var (parent, child, thing) = (Name("g"), Name("g"), Ids.NewId("thing"));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/thing-groups/{parent}", Body(new JsonObject())));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/thing-groups/{child}", Body(new JsonObject { ["parentGroupName"] = parent })));
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Body(new JsonObject())));
        await ApiAssert.OkAsync(await node.Http.PutAsync("/api/thing-groups/addThingToThingGroup", Body(new JsonObject { ["thingGroupName"] = child, ["thingName"] = thing })));
        var cert = Cert();
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/target-policies/{onCert}", Body(new JsonObject { ["target"] = cert })));
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/target-policies/{onCert}", Body(new JsonObject { ["target"] = cert })));   // twice is fine
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/target-policies/{onParent}", Body(new JsonObject { ["target"] = $"arn:aws:iot:eu-west-1:1:thinggroup/{parent}" })));
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/target-policies/{onChild}", Body(new JsonObject { ["target"] = $"arn:aws:iot:local:000000000000:thinggroup/{child}" })));

        var effective = (await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/effective-policies?thingName={thing}", Body(new JsonObject { ["principal"] = cert }))))["effectivePolicies"]!.AsArray();
        Assert.Equal(new[] { onCert, onParent, onChild }.Order(StringComparer.Ordinal), effective.Select(e => (string)e!["policyName"]!).Order(StringComparer.Ordinal));
        Assert.All(effective, e => Assert.Contains("iot:Publish", (string)e!["policyDocument"]!, StringComparison.Ordinal));
        var targets = (await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policy-targets/{onParent}", null)))["targets"]!.AsArray();
        Assert.Equal([$"arn:aws:iot:local:000000000000:thinggroup/{parent}"], targets.Select(t => (string)t!));
        var attached = (await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/attached-policies/{Uri.EscapeDataString(cert)}", null)))["policies"]!.AsArray();
        Assert.Equal([onCert], attached.Select(p => (string)p!["policyName"]!));

        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/policies/{onCert}"), HttpStatusCode.Conflict, "DeleteConflictException");
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/target-policies/{onCert}", Body(new JsonObject { ["target"] = cert })));   // detach
        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/policies/{onCert}"));
        var after = (await ApiAssert.OkAsync(await node.Http.PostAsync("/api/effective-policies", Body(new JsonObject { ["principal"] = cert }))))["effectivePolicies"]!.AsArray();
        Assert.Empty(after);

        await ApiAssert.ProblemAsync(await node.Http.PutAsync($"/api/target-policies/{unrelated}", Body(new JsonObject { ["target"] = "arn:aws:iot:local:0:thinggroup/nope-" + thing })), HttpStatusCode.NotFound, "ResourceNotFoundException");
        await ApiAssert.ProblemAsync(await node.Http.PutAsync($"/api/target-policies/{unrelated}", Body(new JsonObject { ["target"] = "arn:aws:iot:local:0:cert/../../x" })), HttpStatusCode.BadRequest, "InvalidRequestException");
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/target-policies/{unrelated}", Body(new JsonObject { ["target"] = $"arn:aws:iot:local:0:thinggroup/{child}" })));
        await ApiAssert.ProblemAsync(await node.Http.PutAsync($"/api/target-policies/{onParent}", Body(new JsonObject { ["target"] = $"arn:aws:iot:local:0:thinggroup/{child}" })), (HttpStatusCode)410, "LimitExceededException");   // two per thing group
    }

    [Fact]
    public async Task ACertificateTakesAtMostTenPolicies()
    {
        var cert = Cert();
        for (var i = 0; i < 10; i++)
        {
            var name = Name($"ten{i}");
            await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policies/{name}", Body(new JsonObject { ["policyDocument"] = AllowPublish })));
            await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/target-policies/{name}", Body(new JsonObject { ["target"] = cert })));
        }

        var eleventh = Name("eleven");
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policies/{eleventh}", Body(new JsonObject { ["policyDocument"] = AllowPublish })));
        await ApiAssert.ProblemAsync(await node.Http.PutAsync($"/api/target-policies/{eleventh}", Body(new JsonObject { ["target"] = cert })), (HttpStatusCode)410, "LimitExceededException");
        Assert.Empty((await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/policy-targets/{eleventh}", null)))["targets"]!.AsArray());
    }
}
