using System.Diagnostics;
using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;
using MQTTnet.Protocol;
using OrleansIot.Tests.Infrastructure;
using OrleansIot.Tests.Sessions;

namespace OrleansIot.Tests.Shadows;

/// <summary>Shadows end to end on one node: AWS's topics over MQTT (MQTTnet and mosquitto clients) and AWS's HTTP data plane.</summary>
[Collection(NodeCollection.Name)]
public sealed class ShadowOverMqttTests(NodeFixture node)
{
    [Fact]
    public async Task Device_GetsTheDelta_ReportsState_AndTheDeltaIsGone()
    {
        var thing = Ids.NewId("lamp");
        var prefix = $"$aws/things/{thing}/shadow";
        var device = await node.ConnectAsync(thing);
        var inbox = Inbox.Of(device);
        await device.SubscribeAsync(new MqttClientSubscribeOptionsBuilder()
            .WithTopicFilter($"{prefix}/get/+", MqttQualityOfServiceLevel.AtLeastOnce)
            .WithTopicFilter($"{prefix}/update/+", MqttQualityOfServiceLevel.AtLeastOnce)
            .Build());

        // 1. A device that starts before anyone set its shadow gets 404 on /get/rejected (AWS's own walkthrough).
        var get = await device.PublishStringAsync($"{prefix}/get", "{\"clientToken\":\"boot\"}", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.True(get.IsSuccess);
        var rejected = JsonNode.Parse((await inbox.WaitAsync($"{prefix}/get/rejected", 1, "get/rejected"))[0])!;
        Assert.Equal(404, (int)rejected["code"]!);
        Assert.Equal("boot", (string)rejected["clientToken"]!);

        // 2. An application sets desired state over HTTP: the device gets /update/delta.
        var set = await node.Http.PostAsync($"/things/{thing}/shadow", Body("""{"state":{"desired":{"on":true,"level":7}}}"""));
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        var delta = JsonNode.Parse((await inbox.WaitAsync($"{prefix}/update/delta", 1, "update/delta"))[0])!;
        Assert.True((bool)delta["state"]!["on"]!);
        Assert.Equal(7, (int)delta["state"]!["level"]!);
        Assert.Equal(1, (long)delta["version"]!);

        // 3. The device reports: /update/accepted, and no delta is left.
        var report = await device.PublishStringAsync($"{prefix}/update", "{\"state\":{\"reported\":{\"on\":true,\"level\":7}},\"clientToken\":\"r1\"}", MqttQualityOfServiceLevel.AtLeastOnce);
        Assert.True(report.IsSuccess);
        var accepted = JsonNode.Parse((await inbox.WaitAsync($"{prefix}/update/accepted", 2, "update/accepted"))[1])!;
        Assert.Equal("r1", (string)accepted["clientToken"]!);
        Assert.Equal(2, (long)accepted["version"]!);

        await device.PublishStringAsync($"{prefix}/get", "", MqttQualityOfServiceLevel.AtLeastOnce);
        var full = JsonNode.Parse((await inbox.WaitAsync($"{prefix}/get/accepted", 1, "get/accepted"))[0])!;
        Assert.Null(full["state"]!["delta"]);
        Assert.Equal(7, (int)full["state"]!["reported"]!["level"]!);
        Assert.Single(inbox.Payloads($"{prefix}/update/delta"));
    }

    [Fact]
    public async Task OfflineDevice_WithAPersistentSession_GetsTheDeltaWhenItReconnects()
    {
        var thing = Ids.NewId("sleepy");
        var prefix = $"$aws/things/{thing}/shadow";
        var (device, _, _) = await SessionClients.ConnectAsync(node, node.Options(thing).Persistent(cleanStart: true, expirySeconds: 300));
        await device.SubscribeAsync($"{prefix}/update/delta", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.DisconnectAndWaitOfflineAsync(node.Http, thing);

        // While it is away, an application asks for a change.
        Assert.True((await node.Http.PostAsync($"/things/{thing}/shadow", Body("""{"state":{"desired":{"firmware":"2.1"}}}"""))).IsSuccessStatusCode);
        await Eventually.True(async () => (await node.Http.GetStringAsync($"/api/sessions/{thing}")).Contains("\"queuedMessages\":1", StringComparison.Ordinal), "the delta queued for the session");

        var (_, inbox, result) = await SessionClients.ConnectAsync(node, node.Options(thing).Persistent(cleanStart: false, expirySeconds: 300));
        Assert.True(result.IsSessionPresent);
        var delta = JsonNode.Parse((await inbox.WaitAsync($"{prefix}/update/delta", 1, "the delta on reconnect"))[0])!;
        Assert.Equal("2.1", (string)delta["state"]!["firmware"]!);
    }

    [Fact]
    public async Task InvalidUpdate_IsRejectedOnTheTopic_AndTheStoredStateIsUnchanged()
    {
        var thing = Ids.NewId("bad");
        var prefix = $"$aws/things/{thing}/shadow/name/cfg";
        var device = await node.ConnectAsync(thing, MqttProtocolVersion.V311);
        var inbox = Inbox.Of(device);
        await device.SubscribeAsync($"{prefix}/update/+", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.PublishStringAsync($"{prefix}/update", "{\"state\":{\"reported\":{\"a\":1}}}", MqttQualityOfServiceLevel.AtLeastOnce);

        await device.PublishStringAsync($"{prefix}/update", "{\"state\":{\"reported\":{\"a\":2}}", MqttQualityOfServiceLevel.AtLeastOnce);
        await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{prefix}/update").WithPayload([0x7B, 0xFF, 0x7D]).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        await device.PublishStringAsync($"{prefix}/update", "{\"state\":{\"reported\":{\"x\":\"" + new string('x', 9000) + "\"}}}", MqttQualityOfServiceLevel.AtLeastOnce);

        var errors = (await inbox.WaitAsync($"{prefix}/update/rejected", 3, "three rejections")).Select(p => JsonNode.Parse(p)!).ToList();
        Assert.Equal([400, 415, 413], errors.Select(e => (int)e["code"]!));
        Assert.Equal("Invalid JSON", (string)errors[0]["message"]!);
        var stored = JsonNode.Parse(await node.Http.GetStringAsync($"/things/{thing}/shadow?name=cfg"))!;
        Assert.Equal(1, (int)stored["state"]!["reported"]!["a"]!);
        Assert.Equal(1, (long)stored["version"]!);
    }

    [Fact]
    public async Task ShadowRequest_HeldByTheThroughputLimit_IsStillAShadowRequest()
    {
        var thing = Ids.NewId("busy");
        var prefix = $"$aws/things/{thing}/shadow";
        var device = await node.ConnectAsync(thing);
        var inbox = Inbox.Of(device);
        await device.SubscribeAsync($"{prefix}/update/accepted", MqttQualityOfServiceLevel.AtLeastOnce);

        // 1 MB, twice AWS's 512 KiB/s, leaves the connection with no allowance; then a 100 KB shadow request (JSON
        // outside "state" is ignored, as AWS) is held back itself.
        for (var i = 0; i < 10; i++)
        {
            await device.PublishAsync(new MqttApplicationMessageBuilder().WithTopic($"{thing}/bulk").WithPayload(new byte[100_000]).WithQualityOfServiceLevel(MqttQualityOfServiceLevel.AtLeastOnce).Build());
        }

        var update = await device.PublishStringAsync($"{prefix}/update", "{\"state\":{\"reported\":{\"after\":\"bulk\"}},\"padding\":\"" + new string('p', 100_000) + "\"}", MqttQualityOfServiceLevel.AtLeastOnce);

        Assert.True(update.IsSuccess);
        var accepted = JsonNode.Parse((await inbox.WaitAsync($"{prefix}/update/accepted", 1, "the held update decided"))[0])!;
        Assert.Equal("bulk", (string)accepted["state"]!["reported"]!["after"]!);
        Assert.Contains(node.Logs.Entries, e => e.Message.Contains(thing, StringComparison.Ordinal) && e.Message.Contains("bytes per second", StringComparison.Ordinal));
    }

    [Fact]
    public async Task PublishingToAResponseTopic_IsNotAuthorized_AndReachesNoSubscriber()
    {
        var thing = Ids.NewId("spoof");
        var prefix = $"$aws/things/{thing}/shadow";
        var listener = await node.ConnectAsync(thing + "-app");
        var inbox = Inbox.Of(listener);
        await listener.SubscribeAsync($"{prefix}/update/+", MqttQualityOfServiceLevel.AtLeastOnce);
        var spoofer = await node.ConnectAsync(thing);

        var spoof = await spoofer.PublishStringAsync($"{prefix}/update/delta", "{\"state\":{\"unlock\":true}}", MqttQualityOfServiceLevel.AtLeastOnce);
        // The same client then makes a real update: its accepted message comes after the spoof would have.
        await spoofer.PublishStringAsync($"{prefix}/update", "{\"state\":{\"reported\":{\"ok\":1}}}", MqttQualityOfServiceLevel.AtLeastOnce);

        Assert.Equal(MqttClientPublishReasonCode.NotAuthorized, spoof.ReasonCode);
        await inbox.WaitAsync($"{prefix}/update/accepted", 1, "the real update's answer");
        Assert.Empty(inbox.Payloads($"{prefix}/update/delta"));
    }

    [Fact]
    public async Task HttpDataPlane_GetUpdateDeleteAndList_AsAws()
    {
        var thing = Ids.NewId("http");

        var missing = await node.Http.GetAsync($"/things/{thing}/shadow");
        var update = await node.Http.PostAsync($"/things/{thing}/shadow?name=net", Body("""{"state":{"reported":{"ip":"10.0.0.7"}},"clientToken":"h1"}"""));
        var conflict = await node.Http.PostAsync($"/things/{thing}/shadow?name=net", Body("""{"state":{"reported":{"ip":"x"}},"version":7}"""));
        var badJson = await node.Http.PostAsync($"/things/{thing}/shadow?name=net", Body("{"));
        var badName = await node.Http.GetAsync($"/things/{thing}/shadow?name=a%20b");
        await node.Http.PostAsync($"/things/{thing}/shadow?name=power", Body("""{"state":{"reported":{"w":3}}}"""));
        var list = JsonNode.Parse(await node.Http.GetStringAsync($"/api/things/shadow/ListNamedShadowsForThing/{thing}?pageSize=1"))!;
        var list2 = JsonNode.Parse(await node.Http.GetStringAsync($"/api/things/shadow/ListNamedShadowsForThing/{thing}?nextToken={Uri.EscapeDataString((string)list["nextToken"]!)}"))!;
        var deleted = await node.Http.DeleteAsync($"/things/{thing}/shadow?name=net");
        var afterDelete = await node.Http.GetAsync($"/things/{thing}/shadow?name=net");

        Assert.Equal(HttpStatusCode.NotFound, missing.StatusCode);
        Assert.Equal("ResourceNotFoundException", missing.Headers.GetValues("x-amzn-ErrorType").Single());
        Assert.Equal("application/problem+json", missing.Content.Headers.ContentType!.MediaType);
        Assert.Equal($"No shadow exists with name: '{thing}'", (string)(await Problem(missing))["message"]!);
        Assert.Equal(HttpStatusCode.OK, update.StatusCode);
        var accepted = JsonNode.Parse(await update.Content.ReadAsStringAsync())!;
        Assert.Equal("10.0.0.7", (string)accepted["state"]!["reported"]!["ip"]!);
        Assert.Equal("h1", (string)accepted["clientToken"]!);
        Assert.Equal(HttpStatusCode.Conflict, conflict.StatusCode);
        Assert.Equal("ConflictException", (string)(await Problem(conflict))["code"]!);
        Assert.Equal(HttpStatusCode.BadRequest, badJson.StatusCode);
        Assert.Equal("Invalid JSON", (string)(await Problem(badJson))["message"]!);
        Assert.Equal(HttpStatusCode.BadRequest, badName.StatusCode);
        Assert.Equal(["net"], list["results"]!.AsArray().Select(n => (string)n!));
        Assert.Equal(["power"], list2["results"]!.AsArray().Select(n => (string)n!));
        Assert.Null(list2["nextToken"]);
        Assert.Equal(HttpStatusCode.OK, deleted.StatusCode);
        Assert.Equal(1, (long)JsonNode.Parse(await deleted.Content.ReadAsStringAsync())!["version"]!);
        Assert.Equal(HttpStatusCode.NotFound, afterDelete.StatusCode);
    }

    [Fact]
    public async Task ListNamedShadows_OfAnUnknownThing_IsEmpty()
    {
        var list = JsonNode.Parse(await node.Http.GetStringAsync($"/api/things/shadow/ListNamedShadowsForThing/{Ids.NewId("nobody")}"))!;

        Assert.Empty(list["results"]!.AsArray());
        Assert.NotNull(list["timestamp"]);
    }

    [Fact]
    public async Task MosquittoClients_DoAShadowRoundTrip()
    {
        // The README's example: mosquitto_sub on /update/accepted, mosquitto_pub to /update.
        var thing = Ids.NewId("mosq");
        var port = node.MqttPort.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var watcher = await node.ConnectAsync($"{thing}-watch");
        var subscribed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        watcher.ApplicationMessageReceivedAsync += _ =>
        {
            subscribed.TrySetResult();
            return Task.CompletedTask;
        };
        await watcher.SubscribeAsync($"$aws/events/subscriptions/subscribed/{thing}-sub");

        using var sub = Start("mosquitto_sub", "-h", "127.0.0.1", "-p", port, "-i", $"{thing}-sub", "-t", $"$aws/things/{thing}/shadow/update/accepted", "-C", "1", "-W", "20");
        await subscribed.Task.WaitAsync(TimeSpan.FromSeconds(15));
        using var pub = Start("mosquitto_pub", "-h", "127.0.0.1", "-p", port, "-i", thing, "-q", "1", "-t", $"$aws/things/{thing}/shadow/update", "-m", "{\"state\":{\"reported\":{\"on\":true}}}");
        await pub.WaitForExitAsync();
        var output = await sub.StandardOutput.ReadToEndAsync();
        await sub.WaitForExitAsync();

        Assert.Equal(0, pub.ExitCode);
        var accepted = JsonNode.Parse(output)!;
        Assert.True((bool)accepted["state"]!["reported"]!["on"]!);
        Assert.Equal(1, (long)accepted["version"]!);
    }

    private static StringContent Body(string json) => new(json, Encoding.UTF8, "application/json");

    private static async Task<JsonNode> Problem(HttpResponseMessage response) => JsonNode.Parse(await response.Content.ReadAsStringAsync())!;

    private static Process Start(string tool, params string[] args)
    {
        var start = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args)
        {
            start.ArgumentList.Add(arg);
        }

        return Process.Start(start)!;
    }
}
