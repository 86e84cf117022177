using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Security;

/// <summary>A secure node that also serves MQTT and HTTPS on one port told apart by ALPN (AWS's 443).</summary>
public sealed class MultiplexNodeFixture : SecureNodeFixture
{
    public int MultiplexPort { get; } = FreePorts.Next();

    protected override IEnumerable<string> Settings => [$"Iot:Tls:MultiplexPort={MultiplexPort}"];
}

/// <summary>
/// Devices written with the AWS IoT Device SDK v2 (aws-crt, which offers ALPN <c>x-amzn-mqtt-ca</c> on every mTLS
/// connection) run AWS's own sample flows against a node with only the endpoint, port and credentials changed.
/// </summary>
public sealed class AwsDeviceSdkTests(MultiplexNodeFixture node) : IClassFixture<MultiplexNodeFixture>, IDisposable
{
    private readonly string _files = Directory.CreateTempSubdirectory("orleansiot-sdk-").FullName;

    public void Dispose() => Directory.Delete(_files, recursive: true);

    /// <summary>The connection arguments of the scripts: the device's certificate and key and the platform CA, as files.</summary>
    private async Task<JsonObject> ConnectionAsync(X509Certificate2 certificate, string clientId, bool mqtt5, bool multiplexed)
    {
        var name = Guid.NewGuid().ToString("N");
        var (cert, key, ca) = (Path.Combine(_files, name + ".crt"), Path.Combine(_files, name + ".key"), Path.Combine(_files, "ca.pem"));
        await File.WriteAllTextAsync(cert, certificate.ExportCertificatePem());
        await File.WriteAllTextAsync(key, KeyPem(certificate));
        await File.WriteAllTextAsync(ca, (await Devices.PlatformCaAsync(node.Http)).ExportCertificatePem());
        return new JsonObject
        {
            ["host"] = "127.0.0.1",
            ["port"] = multiplexed ? node.MultiplexPort : node.TlsPort,
            ["ca"] = ca,
            ["cert"] = cert,
            ["key"] = key,
            ["clientId"] = clientId,
            ["mqtt5"] = mqtt5,
            ["workDir"] = _files,
        };
    }

    private static string KeyPem(X509Certificate2 certificate) =>
        ((AsymmetricAlgorithm?)certificate.GetRSAPrivateKey() ?? certificate.GetECDsaPrivateKey())!.ExportPkcs8PrivateKeyPem();

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public async Task ShadowSample_OverMtls_PassesEveryCheck(bool mqtt5, bool multiplexed)
    {
        await Devices.CreatePolicyAsync(node.Http, "per-thing", Devices.PerThingPolicy);
        var thing = "sdk-" + Guid.NewGuid().ToString("N")[..8];
        var device = await Devices.CreateAsync(node.Http, thing, "per-thing");
        var arguments = await ConnectionAsync(device.Certificate, thing, mqtt5, multiplexed);
        arguments["thingName"] = thing;

        var result = await NodeClients.RunAsync("sdkv2-shadow.js", arguments);

        NodeClients.AssertPassed(result, "connect", "subscribe", "update accepted", "get accepted", "delta", "stale version rejected", "delete accepted", "disconnect");
    }

    /// <summary>AWS's jobs policy for a thing: its own jobs topics, nothing else.</summary>
    private const string JobsPolicy = """
        {"Version":"2012-10-17","Statement":[
          {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
          {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":"arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"},
          {"Effect":"Allow","Action":"iot:Subscribe","Resource":"arn:aws:iot:*:*:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/jobs/*"},
          {"Effect":"Allow","Action":["iot:GetPendingJobExecutions","iot:StartNextPendingJobExecution","iot:DescribeJobExecution","iot:UpdateJobExecution"],
           "Resource":"arn:aws:iot:*:*:thing/${iot:Connection.Thing.ThingName}"}
        ]}
        """;

    private async Task<(string Thing, DeviceCredentials Device, string JobId, byte[] Firmware)> FirmwareJobAsync()
    {
        await Devices.CreatePolicyAsync(node.Http, "jobs-per-thing", JobsPolicy);
        var thing = "sdkjob-" + Guid.NewGuid().ToString("N")[..8];
        var device = await Devices.CreateAsync(node.Http, thing, "jobs-per-thing");
        var firmware = RandomNumberGenerator.GetBytes(200_001);
        var artifact = await Jobs.JobsOverMqttTests.UploadAsync(node.Http, firmware, "fw.bin");
        var jobId = "fw-" + Guid.NewGuid().ToString("N")[..8];
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/jobs/{jobId}", Jobs.JobsOverMqttTests.Json(new JsonObject
        {
            ["targets"] = new JsonArray(Jobs.JobsOverMqttTests.ThingArn(thing)),
            ["document"] = $$"""{"version":"3.1","url":"${iot:artifact-url:{{artifact["artifactId"]}}}","sha256":"{{artifact["sha256"]}}"}""",
        }.ToJsonString())));
        await Eventually.True(async () => (await node.Http.GetStringAsync($"/api/things/{thing}/jobs")).Contains(jobId, StringComparison.Ordinal), "the execution queued");
        return (thing, device, jobId, firmware);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task JobsSample_TakesTheFirmwareJob_DownloadsItResumingOnce_AndSucceeds(bool mqtt5)
    {
        var (thing, device, jobId, firmware) = await FirmwareJobAsync();
        var arguments = await ConnectionAsync(device.Certificate, thing, mqtt5, multiplexed: false);
        arguments["thingName"] = thing;
        arguments["jobId"] = jobId;

        var result = await NodeClients.RunAsync("sdkv2-jobs.js", arguments);

        NodeClients.AssertPassed(result, "connect", "subscribe", "start next", "download", "update", "queue empty", "disconnect");
        Assert.Equal(firmware.Length, (int)result["values"]!["bytes"]!);
        var job = await Eventually.Get(async () => (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/jobs/{jobId}")))["job"]!, j => (string?)j["status"] == "COMPLETED", "the job completed");
        Assert.Equal(1, (int)job["jobProcessDetails"]!["numberOfSucceededThings"]!);
    }

    /// <summary>
    /// The HTTPS device API with the device's certificate: its own thing's jobs only, as its policy says. An HTTPS
    /// request has no MQTT connection, so no <c>iot:Connection.Thing</c> variables: the policy names the thing, as AWS's
    /// HTTPS jobs example does.
    /// </summary>
    [Fact]
    public async Task JobsOverHttps_WithTheDeviceCertificate_WorkForItsThing_AndAreRefusedForAnother()
    {
        var (thing, device, jobId, _) = await FirmwareJobAsync();
        var policy = "jobs-https-" + thing;
        await Devices.CreatePolicyAsync(node.Http, policy, $$"""
            {"Version":"2012-10-17","Statement":[{"Effect":"Allow",
              "Action":["iot:GetPendingJobExecutions","iot:StartNextPendingJobExecution","iot:DescribeJobExecution","iot:UpdateJobExecution"],
              "Resource":"arn:aws:iot:*:*:thing/{{thing}}"}]}
            """);
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/target-policies/{policy}", Jobs.JobsOverMqttTests.Json($$"""{"target":"{{device.CertificateArn}}"}""")));
        var ca = await Devices.PlatformCaAsync(node.Http);
        using var handler = new HttpClientHandler { ClientCertificateOptions = ClientCertificateOption.Manual };
        handler.ClientCertificates.Add(device.Certificate);
        handler.ServerCertificateCustomValidationCallback = (_, certificate, _, _) => Devices.ChainsTo(certificate, ca);
        using var https = new HttpClient(handler) { BaseAddress = new Uri($"https://127.0.0.1:{node.HttpsPort}") };

        var pending = await ApiAssert.OkAsync(await https.GetAsync($"/things/{thing}/jobs"));
        Assert.Equal(jobId, (string)pending["queuedJobs"]![0]!["jobId"]!);
        var started = await ApiAssert.OkAsync(await https.PutAsync($"/things/{thing}/jobs/$next", Jobs.JobsOverMqttTests.Json("""{"statusDetails":{"via":"https"}}""")));
        Assert.Equal("IN_PROGRESS", (string)started["execution"]!["status"]!);
        var update = await ApiAssert.OkAsync(await https.PostAsync($"/things/{thing}/jobs/{jobId}",
            Jobs.JobsOverMqttTests.Json("""{"status":"FAILED","expectedVersion":2,"includeJobExecutionState":true}""")));
        Assert.Equal("FAILED", (string)update["executionState"]!["status"]!);
        await ApiAssert.ProblemAsync(await https.GetAsync($"/things/{thing}/jobs/{jobId}"), System.Net.HttpStatusCode.Gone, "TerminalStateException");
        await ApiAssert.ProblemAsync(await https.PostAsync($"/things/{thing}/jobs/{jobId}", Jobs.JobsOverMqttTests.Json("""{"status":"SUCCEEDED"}""")),
            System.Net.HttpStatusCode.Conflict, "InvalidStateTransitionException");

        var other = "someone-else-" + Guid.NewGuid().ToString("N")[..6];
        await ApiAssert.ProblemAsync(await https.GetAsync($"/things/{other}/jobs"), System.Net.HttpStatusCode.Forbidden, "AccessDeniedException");
        await ApiAssert.ProblemAsync(await https.GetAsync($"/api/jobs/{jobId}"), System.Net.HttpStatusCode.Unauthorized, "UnauthorizedException");
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, true)]
    public async Task FleetProvisioningSample_WithAwsTemplate_ProvisionsTheDevice_WhichThenConnects(bool mqtt5, bool byCsr)
    {
        var (templateName, claim) = await AwsTemplateAsync();
        var arguments = await ConnectionAsync(claim.Certificate, "claim-" + Guid.NewGuid().ToString("N")[..8], mqtt5, multiplexed: false);
        var serial = Guid.NewGuid().ToString("N")[..10];
        arguments["templateName"] = templateName;
        arguments["parameters"] = new JsonObject { ["SerialNumber"] = serial, ["DeviceLocation"] = "Seattle" };
        if (byCsr)
        {
            using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
            arguments["csr"] = new CertificateRequest("CN=csr-device", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();
            var keyFile = Path.Combine(_files, "csr.key");
            await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());
            arguments["csrKey"] = keyFile;
        }

        var result = await NodeClients.RunAsync("sdkv2-provision.js", arguments);

        NodeClients.AssertPassed(result, "connect with claim", "create certificate", "register thing", "connect with the new certificate");
        Assert.Equal($"ThingPrefix_{serial}", (string)result["values"]!["thingName"]!);
        Assert.Equal("https://example.aws", (string)result["values"]!["deviceConfiguration"]!["LocationUrl"]!);
        var described = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/ThingPrefix_{serial}"));
        Assert.Equal("v1", (string)described["attributes"]!["version"]!);
    }

    /// <summary>AWS's sample template, unchanged, and a claim certificate whose policy allows its provisioning topics.</summary>
    private async Task<(string TemplateName, DeviceCredentials Claim)> AwsTemplateAsync()
    {
        var name = "aws-sample-" + Guid.NewGuid().ToString("N")[..8];
        var body = await File.ReadAllTextAsync(Path.Combine(AppContext.BaseDirectory, "Provisioning", "AwsExamples", "fleet-provisioning-template.json"));
        await ApiAssert.OkAsync(await node.Http.PostAsync("/api/provisioning-templates", ClaimRig.Body(new JsonObject
        {
            ["templateName"] = name,
            ["templateBody"] = body,
            ["enabled"] = true,
        })));
        var claimPolicy = name + "-claim";
        await Devices.CreatePolicyAsync(node.Http, claimPolicy, $$"""
            {"Version":"2012-10-17","Statement":[
              {"Effect":"Allow","Action":"iot:Connect","Resource":"*"},
              {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:*:*:topic/$aws/certificates/create/*","arn:aws:iot:*:*:topic/$aws/certificates/create-from-csr/*","arn:aws:iot:*:*:topic/$aws/provisioning-templates/{{name}}/provision/*"]},
              {"Effect":"Allow","Action":"iot:Subscribe","Resource":["arn:aws:iot:*:*:topicfilter/$aws/certificates/create/*","arn:aws:iot:*:*:topicfilter/$aws/certificates/create-from-csr/*","arn:aws:iot:*:*:topicfilter/$aws/provisioning-templates/{{name}}/provision/*"]}
            ]}
            """);
        return (name, await Devices.CreateAsync(node.Http, name + "-claim", claimPolicy));
    }
}
