using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Certificates;

/// <summary>Bring-your-own CA: registration with proof of possession, device certificates it signed, AWS's refusals.</summary>
[Collection(NodeCollection.Name)]
public sealed class CaRegistrationTests(NodeFixture node)
{
    private static StringContent Body(JsonNode json) => new(json.ToJsonString(), Encoding.UTF8, "application/json");

    private Task<HttpResponseMessage> RegisterCaAsync(X509Certificate2 ca, X509Certificate2 verification, string query = "?setAsActive=true") =>
        node.Http.PostAsync("/api/cacertificate" + query, Body(new JsonObject { ["caCertificate"] = ca.ExportCertificatePem(), ["verificationCertificate"] = verification.ExportCertificatePem() }));

    private Task<HttpResponseMessage> RegisterAsync(X509Certificate2 device, string path = "/api/certificate/register") =>
        node.Http.PostAsync(path, Body(new JsonObject { ["certificatePem"] = device.ExportCertificatePem(), ["status"] = "ACTIVE" }));

    [Fact]
    public async Task ACaRegisteredWithProofOfPossession_LetsItsDeviceCertificatesRegister()
    {
        var code = (string)(await ApiAssert.OkAsync(await node.Http.GetAsync("/api/registrationcode")))["registrationCode"]!;
        Assert.Equal(code, (string)(await ApiAssert.OkAsync(await node.Http.GetAsync("/api/registrationcode")))["registrationCode"]!);
        Assert.Matches("^[0-9a-f]{64}$", code);
        using var ca = TestCertificates.NewCa("Acme Devices CA " + Guid.NewGuid());
        using var other = TestCertificates.NewCa("Other CA");

        await ApiAssert.ProblemAsync(await RegisterCaAsync(ca, TestCertificates.Issue(ca, "not-the-code")), HttpStatusCode.BadRequest, "InvalidRequestException");
        await ApiAssert.ProblemAsync(await RegisterCaAsync(ca, TestCertificates.Issue(other, code)), HttpStatusCode.BadRequest, "InvalidRequestException");   // signed by another key
        await ApiAssert.ProblemAsync(await RegisterCaAsync(TestCertificates.Issue(ca, "leaf"), TestCertificates.Issue(ca, code)), HttpStatusCode.BadRequest, "InvalidRequestException");   // not a CA
        var registered = await ApiAssert.OkAsync(await RegisterCaAsync(ca, TestCertificates.Issue(ca, code)));
        Assert.Equal(TestCertificates.Id(ca), (string)registered["certificateId"]!);
        await ApiAssert.ProblemAsync(await RegisterCaAsync(ca, TestCertificates.Issue(ca, code)), HttpStatusCode.Conflict, "ResourceAlreadyExistsException");
        var described = (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/cacertificate/{TestCertificates.Id(ca)}")))["certificateDescription"]!;
        Assert.Equal("ACTIVE", (string)described["status"]!);
        Assert.Equal("DISABLE", (string)described["autoRegistrationStatus"]!);
        Assert.Contains((await ApiAssert.OkAsync(await node.Http.GetAsync("/api/cacertificates")))["certificates"]!.AsArray(), c => (string)c!["certificateId"]! == TestCertificates.Id(ca));

        using var device = TestCertificates.Issue(ca, "sensor-1");
        var deviceId = (string)(await ApiAssert.OkAsync(await RegisterAsync(device)))["certificateId"]!;
        var deviceDescription = (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/certificates/{deviceId}")))["certificateDescription"]!;
        Assert.Equal(TestCertificates.Id(ca), (string)deviceDescription["caCertificateId"]!);
        Assert.Equal("ACTIVE", (string)deviceDescription["status"]!);

        await ApiAssert.ProblemAsync(await RegisterAsync(TestCertificates.Issue(other, "stranger")), HttpStatusCode.BadRequest, "CertificateValidationException");
        await ApiAssert.ProblemAsync(await RegisterAsync(TestCertificates.Issue(ca, "old", DateTimeOffset.UtcNow.AddDays(-10), DateTimeOffset.UtcNow.AddDays(-1))), HttpStatusCode.BadRequest, "CertificateValidationException");
        await ApiAssert.ProblemAsync(await RegisterAsync(TestCertificates.Issue(ca, "early", DateTimeOffset.UtcNow.AddDays(1), DateTimeOffset.UtcNow.AddDays(10))), HttpStatusCode.BadRequest, "CertificateValidationException");
        await ApiAssert.ProblemAsync(await node.Http.PostAsync("/api/certificate/register", Body(new JsonObject { ["certificatePem"] = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----" })), HttpStatusCode.BadRequest, "InvalidRequestException");
        Assert.True((await RegisterAsync(TestCertificates.Issue(other, "no-ca"), "/api/certificate/register-no-ca")).IsSuccessStatusCode);

        // An inactive CA registers nothing and can then be deleted; an active one cannot.
        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/cacertificate/{TestCertificates.Id(ca)}"), HttpStatusCode.Conflict, "CertificateStateException");
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/cacertificate/{TestCertificates.Id(ca)}?newStatus=INACTIVE&newAutoRegistrationStatus=ENABLE", null));
        Assert.Equal("ENABLE", (string)(await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/cacertificate/{TestCertificates.Id(ca)}")))["certificateDescription"]!["autoRegistrationStatus"]!);
        await ApiAssert.ProblemAsync(await RegisterAsync(TestCertificates.Issue(ca, "sensor-2")), HttpStatusCode.BadRequest, "CertificateValidationException");
        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/cacertificate/{TestCertificates.Id(ca)}"));
        await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/cacertificate/{TestCertificates.Id(ca)}"), HttpStatusCode.NotFound, "ResourceNotFoundException");
    }
}
