using System.Net.Http.Json;
using MQTTnet;
using MQTTnet.Protocol;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Storage;

/// <summary>Silo hosts as separate OS processes in PostgreSQL mode: a real cluster, and kill -9.</summary>
[Collection(PostgresCollection.Name)]
public sealed class PostgresNodesTests(PostgresServer postgres)
{
    private static Dictionary<string, string> PostgresMode(string connectionString, string clusterId) => new()
    {
        ["Iot__Storage"] = "Postgres",
        ["ConnectionStrings__Iot"] = connectionString,
        ["Orleans__ClusterId"] = clusterId,
        ["Iot__Usage__FlushInterval"] = "00:00:00.200",
        ["Iot__Things__UsagePersistInterval"] = "00:00:00.200",
    };

    private static async Task<ThingStatus?> GetThingAsync(SiloProcess silo, string name)
    {
        var response = await silo.Http.GetAsync($"/api/things/{name}/status");
        return response.IsSuccessStatusCode ? await response.Content.ReadFromJsonAsync<ThingStatus>(Json.Web) : null;
    }

    [Fact]
    public async Task TwoProcesses_FormOneCluster_StateWrittenThroughAIsReadThroughB_AndMessagesRouteBetweenThem()
    {
        var settings = PostgresMode(await postgres.CreateDatabaseAsync(), "two-" + Guid.NewGuid().ToString("N")[..8]);
        await using var a = SiloProcess.Start(settings);
        await a.WaitUntilReadyAsync();
        await using var b = SiloProcess.Start(settings);
        await b.WaitUntilReadyAsync();

        var deviceId = "dev-" + Guid.NewGuid().ToString("N")[..8];
        using var app = await b.ConnectAsync("app-" + deviceId);
        var received = new System.Collections.Concurrent.ConcurrentQueue<string>();
        app.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage.Topic);
            return Task.CompletedTask;
        };
        await app.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter("dt/+/telemetry", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        using var device = await a.ConnectAsync(deviceId);
        for (var i = 0; i < 3; i++)
        {
            await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"dt/{deviceId}/telemetry").WithPayload("{\"t\":1}").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        var status = await Eventually.Get(() => GetThingAsync(b, deviceId), s => s is { Connectivity.Connected: true, Usage.MessagesIn: 3 }, "node B to see the device on node A", TimeSpan.FromSeconds(30));
        Assert.Equal(21, status!.Usage.BytesIn);
        Assert.NotNull(status.Connectivity.Node);
        // The application on node B got the device's messages published on node A.
        try
        {
            await Eventually.True(() => Task.FromResult(received.Count(t => t == $"dt/{deviceId}/telemetry") == 3), "the messages routed from node A to node B");
        }
        catch (TimeoutException ex)
        {
            // Seen once in a full run: both nodes' logs say why (a route that did not reach node A in time?).
            throw new TimeoutException($"{ex.Message}; received {received.Count}\n--- node A ---\n{a.Output}\n--- node B ---\n{b.Output}", ex);
        }

        // The registry (PostgreSQL tables): registered through node A, described and found by attribute through node B.
        var created = await a.Http.PostAsync($"/api/things/{deviceId}", new StringContent("{\"attributePayload\":{\"attributes\":{\"site\":\"berlin\"}}}", System.Text.Encoding.UTF8, "application/json"));
        Assert.True(created.IsSuccessStatusCode, await created.Content.ReadAsStringAsync());
        Assert.Contains("\"site\":\"berlin\"", await b.Http.GetStringAsync($"/api/things/{deviceId}"), StringComparison.Ordinal);
        Assert.Contains($"\"thingName\":\"{deviceId}\"", await b.Http.GetStringAsync("/api/things?attributeName=site&attributeValue=berlin"), StringComparison.Ordinal);

        // A rule (durable telemetry stream, rule state in PostgreSQL): created through B, fed by the device on A, its
        // output received by the application on B.
        var rule = "{\"sql\":\"SELECT t * 10 AS scaled FROM 'dt/+/telemetry'\",\"actions\":[{\"republish\":{\"topic\":\"scaled/${topic(2)}\",\"qos\":1}}]}";
        var ruleCreated = await b.Http.PostAsync("/api/rules/scale_" + deviceId.Replace("-", "_", StringComparison.Ordinal), new StringContent(rule, System.Text.Encoding.UTF8, "application/json"));
        Assert.True(ruleCreated.IsSuccessStatusCode, await ruleCreated.Content.ReadAsStringAsync());
        await app.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"scaled/{deviceId}", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        // The evaluators read rule changes within Iot:Rules:RefreshInterval (1 s by default): publish until one is seen.
        await Eventually.True(async () =>
        {
            await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"dt/{deviceId}/telemetry").WithPayload("{\"t\":2}").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            return received.Contains($"scaled/{deviceId}");
        }, "the rule's output through the durable stream", TimeSpan.FromSeconds(30));
    }

    [Fact]
    public async Task KillDashNine_ThenRestart_RegisteredStateIsThere()
    {
        var settings = PostgresMode(await postgres.CreateDatabaseAsync(), "kill-" + Guid.NewGuid().ToString("N")[..8]);
        // The restarted node comes back with the same configuration (ports) as an operator restarts it: Orleans
        // then sees the same silo address with a newer generation and retires the killed incarnation at once.
        var (mqttPort, httpPort, siloPort, gatewayPort) = (FreePorts.Next(), FreePorts.Next(), FreePorts.Next(), FreePorts.Next());
        var deviceId = "dev-" + Guid.NewGuid().ToString("N")[..8];
        ThingStatus before;
        await using (var first = SiloProcess.Start(settings, mqttPort, httpPort, siloPort, gatewayPort))
        {
            await first.WaitUntilReadyAsync();
            using var device = await first.ConnectAsync(deviceId);
            await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"dt/{deviceId}/t").WithPayload("12345").WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            var retained = await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"cfg/{deviceId}").WithPayload("v7").WithRetainFlag().WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
            Assert.True(retained.IsSuccess);   // PUBACK: the retained message is in PostgreSQL
            await device.DisconnectAsync();
            before = (await Eventually.Get(() => GetThingAsync(first, deviceId), s => s is { Connectivity.Connected: false, Usage.MessagesIn: 2 }, "the disconnect to be recorded"))!;
            // Usage counters are written every Iot:Things:UsagePersistInterval (200 ms here), not per message: what a
            // kill can lose by design (docs/architecture.md). Kill after that bound, as the promise is stated.
            await Task.Delay(TimeSpan.FromSeconds(1));

            first.Kill();
        }

        await using var second = SiloProcess.Start(settings, mqttPort, httpPort, siloPort, gatewayPort);
        await second.WaitUntilReadyAsync();
        var after = await GetThingAsync(second, deviceId);

        Assert.NotNull(after);
        Assert.Equal(before.Connectivity.SessionId, after.Connectivity.SessionId);
        Assert.Equal(DisconnectReasons.ClientInitiated, after.Connectivity.DisconnectReason);
        Assert.Equal(2, after.Usage.MessagesIn);
        Assert.Equal(7, after.Usage.BytesIn);

        // The retained message survived the kill: a new subscriber gets it from the restarted node.
        using var subscriber = await second.ConnectAsync("late-" + deviceId);
        var received = new System.Collections.Concurrent.ConcurrentQueue<MqttApplicationMessage>();
        subscriber.ApplicationMessageReceivedAsync += e =>
        {
            received.Enqueue(e.ApplicationMessage);
            return Task.CompletedTask;
        };
        await subscriber.SubscribeAsync(new MqttClientSubscribeOptionsBuilder().WithTopicFilter($"cfg/{deviceId}", MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await Eventually.True(() => Task.FromResult(!received.IsEmpty), "the retained message after the restart");
        Assert.Equal("v7", received.First().ConvertPayloadToString());
        Assert.True(received.First().Retain);
    }

    [Fact]
    public async Task Identity_SurvivesKillDashNine_CaKeysCertificatesPoliciesAndTheFirstStartKeyMadeOnce()
    {
        var settings = PostgresMode(await postgres.CreateDatabaseAsync(), "id-" + Guid.NewGuid().ToString("N")[..8]);
        settings["Iot__Auth__BootstrapAdminKey"] = "";   // no configured key: the deployment makes one at its first start
        var (mqttPort, httpPort, siloPort, gatewayPort) = (FreePorts.Next(), FreePorts.Next(), FreePorts.Next(), FreePorts.Next());
        string caId, certificateId, readerKey;
        System.Net.Http.Headers.AuthenticationHeaderValue admin;
        await using (var first = SiloProcess.Start(settings, mqttPort, httpPort, siloPort, gatewayPort))
        {
            await first.WaitUntilReadyAsync();
            var key = await Eventually.Get(
                () => Task.FromResult(System.Text.RegularExpressions.Regex.Match(first.Output, "oiot_[0-9a-f]{16}_[A-Za-z0-9_-]+").Value),
                k => k.Length > 0, "the first-start admin key in the log", TimeSpan.FromSeconds(30));
            admin = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", key);
            first.Http.DefaultRequestHeaders.Authorization = admin;
            caId = (string)(await ApiAssert.OkAsync(await first.Http.GetAsync("/api/cacertificate")))["certificateId"]!;
            readerKey = (string)(await ApiAssert.OkAsync(await first.Http.PostAsync("/api/apikeys", Body("""{"name":"r","role":"reader"}"""))))["key"]!;
            var created = await ApiAssert.OkAsync(await first.Http.PostAsync("/api/keys-and-certificate?setAsActive=true", null));
            certificateId = (string)created["certificateId"]!;
            await ApiAssert.OkAsync(await first.Http.PostAsync("/api/policies/durable", Body("""{"policyDocument":"{\"Version\":\"2012-10-17\",\"Statement\":[{\"Effect\":\"Allow\",\"Action\":\"iot:Connect\",\"Resource\":\"*\"}]}"}""")));
            await ApiAssert.OkAsync(await first.Http.PutAsync("/api/target-policies/durable", Body($$"""{"target":"{{(string)created["certificateArn"]!}}"}""")));
            first.Kill();
        }

        await using var second = SiloProcess.Start(settings, mqttPort, httpPort, siloPort, gatewayPort);
        await second.WaitUntilReadyAsync();
        second.Http.DefaultRequestHeaders.Authorization = admin;

        Assert.Equal(caId, (string)(await ApiAssert.OkAsync(await second.Http.GetAsync("/api/cacertificate")))["certificateId"]!);
        Assert.Equal("ACTIVE", (string)(await ApiAssert.OkAsync(await second.Http.GetAsync($"/api/certificates/{certificateId}")))["certificateDescription"]!["status"]!);
        Assert.Contains("durable", (await ApiAssert.OkAsync(await second.Http.PostAsync($"/api/attached-policies/{Uri.EscapeDataString($"arn:aws:iot:local:000000000000:cert/{certificateId}")}", null))).ToJsonString(), StringComparison.Ordinal);
        using var reader = new HttpClient { BaseAddress = second.Http.BaseAddress };
        reader.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", readerKey);
        await ApiAssert.OkAsync(await reader.GetAsync("/api/things"));
        await Eventually.True(async () => (await second.Http.GetAsync("/api/apikeys")).IsSuccessStatusCode, "the restarted node ready");
        Assert.DoesNotMatch("First start: made the admin API key", second.Output);
    }

    private static StringContent Body(string body) => new(body, System.Text.Encoding.UTF8, "application/json");
}
