using System.Net.Http.Json;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Certificates;

/// <summary>Certificates and policies on two nodes: one CA for the cluster, and what one node records the other sees.</summary>
[Collection(TwoNodeCollection.Name)]
public sealed class ClusterIdentityTests(TwoNodeFixture nodes)
{
    private static StringContent Body(JsonNode json) => new(json.ToJsonString(), Encoding.UTF8, "application/json");

    [Fact]
    public async Task OneCaForTheCluster_CertificatesAndAttachmentsMadeOnASeenOnB()
    {
        var caA = await nodes.A.Http.GetFromJsonAsync<JsonObject>("/api/cacertificate");
        var caB = await nodes.B.Http.GetFromJsonAsync<JsonObject>("/api/cacertificate");
        Assert.Equal((string)caA!["certificateId"]!, (string)caB!["certificateId"]!);

        var created = JsonNode.Parse(await (await nodes.A.Http.PostAsync("/api/keys-and-certificate?setAsActive=true", null)).Content.ReadAsStringAsync())!;
        var (id, arn) = ((string)created["certificateId"]!, (string)created["certificateArn"]!);
        Assert.Equal("ACTIVE", (string)(await nodes.B.Http.GetFromJsonAsync<JsonObject>($"/api/certificates/{id}"))!["certificateDescription"]!["status"]!);

        var policy = "p_" + Guid.NewGuid().ToString("N")[..10];
        var document = """{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}""";
        Assert.True((await nodes.A.Http.PostAsync($"/api/policies/{policy}", Body(new JsonObject { ["policyDocument"] = document }))).IsSuccessStatusCode);
        Assert.True((await nodes.B.Http.PutAsync($"/api/target-policies/{policy}", Body(new JsonObject { ["target"] = arn }))).IsSuccessStatusCode);

        var effective = JsonNode.Parse(await (await nodes.A.Http.PostAsync("/api/effective-policies", Body(new JsonObject { ["principal"] = arn }))).Content.ReadAsStringAsync())!;
        Assert.Equal([policy], effective["effectivePolicies"]!.AsArray().Select(p => (string)p!["policyName"]!));
    }
}
