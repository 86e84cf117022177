using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;
using static OrleansIot.Tests.Infrastructure.Ids;

namespace OrleansIot.Tests.Security;

/// <summary>
/// Backends written against AWS's SDK and CLI: an API key is also an AWS credential pair, and requests signed with
/// SigV4 are authenticated as that key; the clients run unchanged but for the endpoint.
/// </summary>
[Collection(NodeCollection.Name)]
public sealed class SigV4Tests(NodeFixture node)
{
    private string Api => $"http://127.0.0.1:{node.HttpPort}/api";

    private string DataPlane => $"http://127.0.0.1:{node.HttpPort}";

    private async Task<JsonObject> CreateKeyAsync(string role)
    {
        var body = new StringContent(new JsonObject { ["name"] = $"sigv4 {role}", ["role"] = role }.ToJsonString(), Encoding.UTF8, "application/json");
        return (await ApiAssert.OkAsync(await node.Http.PostAsync("/api/apikeys", body))).AsObject();
    }

    private static JsonObject Credentials(JsonObject key) => new() { ["accessKeyId"] = (string)key["accessKeyId"]!, ["secretAccessKey"] = (string)key["secretAccessKey"]! };

    [Fact]
    public async Task ApiKey_IsAlsoAnAwsCredentialPair_WhoseSecretIsShownOnce()
    {
        var key = await CreateKeyAsync("operator");
        var accessKeyId = (string)key["accessKeyId"]!;
        Assert.Matches("^OIOT[0-9A-F]{16}$", accessKeyId);
        Assert.Equal(40, ((string)key["secretAccessKey"]!).Length);

        var listed = (await ApiAssert.OkAsync(await node.Http.GetAsync("/api/apikeys")))["apiKeys"]!.AsArray().Single(k => (string)k!["keyId"]! == (string)key["keyId"]!)!;
        Assert.Equal(accessKeyId, (string)listed["accessKeyId"]!);
        Assert.Null(listed["secretAccessKey"]);
        Assert.Null(listed["key"]);
    }

    [Fact]
    public async Task AwsSdkV3_RunsTheControlAndDataPlanes_AndEverySignatureFaultIsRefusedAsAwsDoes()
    {
        var thing = NewId("sdk3");
        var topic = $"sdk3/{thing}/in";
        var (subscriber, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("sub")));
        await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);
        var arguments = new JsonObject
        {
            ["api"] = Api,
            ["data"] = DataPlane,
            ["admin"] = Credentials(await CreateKeyAsync("admin")),
            ["reader"] = Credentials(await CreateKeyAsync("reader")),
            ["thingName"] = thing,
            ["publishTopic"] = topic,
        };

        var result = await NodeClients.RunAsync("sdkv3-control.js", arguments);

        NodeClients.AssertPassed(result,
            "CreateThing", "UpdateThing, DescribeThing", "ListThings", "thing groups", "CreateKeysAndCertificate", "AttachPolicy",
            "AttachThingPrincipal, ListThingPrincipals", "CreateTopicRule, GetTopicRule", "ListTopicRules", "UpdateThingShadow",
            "GetThingShadow", "Publish", "DeleteThing",
            "wrong secret: InvalidSignatureException", "unknown key: UnrecognizedClientException", "reader key reads",
            "reader key: change refused", "signed 20 min ago: 403 Signature expired", "skewed SDK clock corrected",
            "tampered body: InvalidSignatureException", "signed raw request accepted", "presigned URL", "expired presigned URL: 403");
        Assert.Equal(["{\"from\":\"sdk v3\"}"], await inbox.WaitAsync(topic, 1, "the SDK's publish"));

        // Refused calls change nothing: the tampered create and the reader's create made no thing.
        Assert.Equal(HttpStatusCode.NotFound, (await node.Http.GetAsync($"/api/things/{thing}-tampered")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await node.Http.GetAsync($"/api/things/{thing}-reader")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await node.Http.GetAsync($"/api/things/{thing}-signed")).StatusCode);
    }

    [Fact]
    public async Task AwsSdkV3_SearchesAndAggregatesTheFleet_AndMakesADynamicGroup()
    {
        var arguments = new JsonObject
        {
            ["api"] = Api,
            ["data"] = DataPlane,
            ["admin"] = Credentials(await CreateKeyAsync("operator")),
            ["prefix"] = NewId("sdkfleet"),
        };

        var result = await NodeClients.RunAsync("sdkv3-fleet.js", arguments);

        NodeClients.AssertPassed(result,
            "SearchIndex", "SearchIndex pages", "GetStatistics", "GetCardinality", "GetPercentiles", "GetBucketsAggregation",
            "GetIndexingConfiguration", "DescribeIndex", "ListIndices", "CreateDynamicThingGroup", "DescribeThingGroup (dynamic)",
            "ListThingsInThingGroup (dynamic)", "DeleteDynamicThingGroup", "bad query: InvalidQueryException", "unknown index: ResourceNotFoundException");
    }

    [Fact]
    public async Task AwsSdkV3_ManagesJobTemplatesAndJobs()
    {
        var thing = NewId("sdkjobs");
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", new StringContent("{}", Encoding.UTF8, "application/json")));
        var artifact = await Jobs.JobsOverMqttTests.UploadAsync(node.Http, [1, 2, 3], "fw.bin");
        var arguments = new JsonObject
        {
            ["api"] = Api,
            ["admin"] = Credentials(await CreateKeyAsync("operator")),
            ["thingName"] = thing,
            ["artifactId"] = (string)artifact["artifactId"]!,
        };

        var result = await NodeClients.RunAsync("sdkv3-jobs.js", arguments);

        NodeClients.AssertPassed(result,
            "CreateJobTemplate", "DescribeJobTemplate", "ListJobTemplates", "CreateJob", "CreateJob again: ResourceAlreadyExistsException", "GetJobDocument",
            "DescribeJob", "ListJobs", "UpdateJob", "ListJobExecutionsForJob", "ListJobExecutionsForThing", "DescribeJobExecution",
            "DeleteJob in progress: InvalidStateTransitionException", "CancelJob", "canceled", "DeleteJob", "DeleteJobTemplate");
        var execution = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{thing}/jobs"));
        Assert.Empty(execution["executionSummaries"]!.AsArray());   // the job's deletion took its execution along
    }

    [Fact]
    public async Task AwsCli_ManagesThingsShadowsAndPublishes_AndStopsWorkingWhenItsKeyIsDeleted()
    {
        var key = await CreateKeyAsync("operator");
        var thing = NewId("cli");
        var topic = $"cli/{thing}/in";
        var (subscriber, inbox, _) = await SessionClients.ConnectAsync(node, node.Options(NewId("sub")));
        await subscriber.SubscribeAsync(topic, MqttQualityOfServiceLevel.AtLeastOnce);

        var created = await AwsAsync(key, Api, "iot", "create-thing", "--thing-name", thing, "--attribute-payload", "{\"attributes\":{\"room\":\"lab\"}}");
        Assert.EndsWith($"thing/{thing}", (string)created["thingArn"]!);
        await AwsAsync(key, Api, "iot", "update-thing", "--thing-name", thing, "--expected-version", "1", "--attribute-payload", "{\"attributes\":{\"floor\":\"2\"},\"merge\":true}");
        var described = await AwsAsync(key, Api, "iot", "describe-thing", "--thing-name", thing);
        Assert.Equal((2, "lab", "2"), ((int)described["version"]!, (string)described["attributes"]!["room"]!, (string)described["attributes"]!["floor"]!));
        var listed = await AwsAsync(key, Api, "iot", "list-things", "--attribute-name", "room", "--attribute-value", "lab");
        Assert.Contains(listed["things"]!.AsArray(), t => (string)t!["thingName"]! == thing);

        // Payloads from files (fileb://): the same in AWS CLI v1 and v2.
        var (shadowFile, payloadFile) = (Path.GetTempFileName(), Path.GetTempFileName());
        try
        {
            await File.WriteAllTextAsync(payloadFile, "{\"state\":{\"desired\":{\"on\":true}}}");
            await AwsAsync(key, DataPlane, "iot-data", "update-thing-shadow", "--thing-name", thing, "--payload", $"fileb://{payloadFile}", shadowFile);
            await AwsAsync(key, DataPlane, "iot-data", "get-thing-shadow", "--thing-name", thing, shadowFile);
            Assert.True((bool)JsonNode.Parse(await File.ReadAllTextAsync(shadowFile))!["state"]!["delta"]!["on"]!);

            await File.WriteAllTextAsync(payloadFile, "{\"from\":\"cli\"}");
            await AwsAsync(key, DataPlane, "iot-data", "publish", "--topic", topic, "--qos", "1", "--payload", $"fileb://{payloadFile}");
            Assert.Equal(["{\"from\":\"cli\"}"], await inbox.WaitAsync(topic, 1, "the CLI's publish"));
        }
        finally
        {
            File.Delete(shadowFile);
            File.Delete(payloadFile);
        }

        // Types, groups, identity and rules, as the CLI sends them (an admin key: identity is the admin's).
        var admin = await CreateKeyAsync("admin");
        await AwsAsync(admin, Api, "iot", "create-thing-type", "--thing-type-name", $"{thing}-type", "--thing-type-properties", "thingTypeDescription=pumps,searchableAttributes=room");
        Assert.Equal("pumps", (string)(await AwsAsync(admin, Api, "iot", "describe-thing-type", "--thing-type-name", $"{thing}-type"))["thingTypeProperties"]!["thingTypeDescription"]!);
        await AwsAsync(admin, Api, "iot", "create-thing-group", "--thing-group-name", $"{thing}-group");
        await AwsAsync(admin, Api, "iot", "add-thing-to-thing-group", "--thing-group-name", $"{thing}-group", "--thing-name", thing);
        Assert.Contains(thing, (await AwsAsync(admin, Api, "iot", "list-things-in-thing-group", "--thing-group-name", $"{thing}-group"))["things"]!.AsArray().Select(t => (string?)t));
        await AwsAsync(admin, Api, "iot", "create-policy", "--policy-name", $"{thing}-policy",
            "--policy-document", "{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}");
        var certificateArn = (string)(await AwsAsync(admin, Api, "iot", "create-keys-and-certificate", "--set-as-active"))["certificateArn"]!;
        await AwsAsync(admin, Api, "iot", "attach-policy", "--policy-name", $"{thing}-policy", "--target", certificateArn);
        await AwsAsync(admin, Api, "iot", "attach-thing-principal", "--thing-name", thing, "--principal", certificateArn);
        Assert.Equal([certificateArn], (await AwsAsync(admin, Api, "iot", "list-thing-principals", "--thing-name", thing))["principals"]!.AsArray().Select(p => (string?)p));
        var rule = thing.Replace('-', '_');
        await AwsAsync(admin, Api, "iot", "create-topic-rule", "--rule-name", rule, "--topic-rule-payload",
            $"{{\"sql\":\"SELECT * FROM 'cli/{thing}/#'\",\"actions\":[{{\"republish\":{{\"topic\":\"cli-out/{thing}\",\"roleArn\":\"arn:aws:iam::000000000000:role/r\"}}}}]}}");
        Assert.Equal($"SELECT * FROM 'cli/{thing}/#'", (string)(await AwsAsync(admin, Api, "iot", "get-topic-rule", "--rule-name", rule))["rule"]!["sql"]!);
        Assert.Contains(rule, (await AwsAsync(admin, Api, "iot", "list-topic-rules"))["rules"]!.AsArray().Select(r => (string?)r!["ruleName"]));
        await AwsAsync(admin, Api, "iot", "detach-thing-principal", "--thing-name", thing, "--principal", certificateArn);

        await AwsAsync(key, Api, "iot", "delete-thing", "--thing-name", thing);
        Assert.Contains("ResourceNotFoundException", await AwsFailsAsync(key, Api, "iot", "describe-thing", "--thing-name", thing));

        Assert.Equal(HttpStatusCode.OK, (await node.Http.DeleteAsync($"/api/apikeys/{key["keyId"]}")).StatusCode);
        Assert.Contains("UnrecognizedClientException", await AwsFailsAsync(key, Api, "iot", "list-things"));
    }

    /// <summary>Runs the AWS CLI with the key's credentials against the endpoint; its JSON output (or an empty object).</summary>
    private static async Task<JsonObject> AwsAsync(JsonObject key, string endpoint, params string[] arguments)
    {
        var (exitCode, output, errors) = await RunAwsAsync(key, endpoint, arguments);
        Assert.True(exitCode == 0, $"aws {string.Join(' ', arguments)} exited with {exitCode}: {errors}");
        return output.Trim().Length == 0 ? [] : JsonNode.Parse(output)!.AsObject();
    }

    /// <summary>Runs the AWS CLI expecting it to fail; what it printed on stderr.</summary>
    private static async Task<string> AwsFailsAsync(JsonObject key, string endpoint, params string[] arguments)
    {
        var (exitCode, _, errors) = await RunAwsAsync(key, endpoint, arguments);
        Assert.NotEqual(0, exitCode);
        return errors;
    }

    private static async Task<(int ExitCode, string Output, string Errors)> RunAwsAsync(JsonObject key, string endpoint, string[] arguments)
    {
        var start = new ProcessStartInfo("aws") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var argument in arguments)
        {
            start.ArgumentList.Add(argument);
        }

        start.ArgumentList.Add("--endpoint-url");
        start.ArgumentList.Add(endpoint);
        start.Environment["AWS_ACCESS_KEY_ID"] = (string)key["accessKeyId"]!;
        start.Environment["AWS_SECRET_ACCESS_KEY"] = (string)key["secretAccessKey"]!;
        start.Environment["AWS_DEFAULT_REGION"] = "us-east-1";
        start.Environment["AWS_EC2_METADATA_DISABLED"] = "true";
        start.Environment["AWS_PAGER"] = "";
        start.Environment["AWS_CONFIG_FILE"] = "/dev/null";
        start.Environment["AWS_SHARED_CREDENTIALS_FILE"] = "/dev/null";
        start.Environment["AWS_MAX_ATTEMPTS"] = "1";
        using var process = Process.Start(start) ?? throw new InvalidOperationException("aws did not start (install awscli)");
        var output = process.StandardOutput.ReadToEndAsync();
        var errors = process.StandardError.ReadToEndAsync();
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await process.WaitForExitAsync(cancel.Token);
        return (process.ExitCode, await output, await errors);
    }
}
