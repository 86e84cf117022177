using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Certificates;

/// <summary>The platform CA and certificate control plane over HTTP, with AWS's shapes, states and exception names.</summary>
[Collection(NodeCollection.Name)]
public sealed class CertificatesApiTests(NodeFixture node)
{
    private static StringContent Body(JsonNode json) => new(json.ToJsonString(), Encoding.UTF8, "application/json");

    private async Task<X509Certificate2> CaAsync()
    {
        var ca = await ApiAssert.OkAsync(await node.Http.GetAsync("/api/cacertificate"));
        var certificate = X509Certificate2.CreateFromPem((string)ca["certificatePem"]!);
        Assert.Equal(TestCertificates.Id(certificate), (string)ca["certificateId"]!);
        Assert.Equal("ACTIVE", (string)ca["status"]!);
        return certificate;
    }

    private static void AssertIssuedBy(X509Certificate2 certificate, X509Certificate2 ca)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        Assert.True(chain.Build(certificate), string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation)));
    }

    [Fact]
    public async Task CreateKeysAndCertificate_GivesAKeyPairOnce_AndACertificateFromThePlatformCa()
    {
        var ca = await CaAsync();
        Assert.True(ca.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);

        var created = await ApiAssert.OkAsync(await node.Http.PostAsync("/api/keys-and-certificate?setAsActive=true", null));

        var certificate = X509Certificate2.CreateFromPem((string)created["certificatePem"]!, (string)created["keyPair"]!["PrivateKey"]!);
        Assert.True(certificate.HasPrivateKey);   // the key pair belongs to the certificate
        Assert.Equal(TestCertificates.Id(certificate), (string)created["certificateId"]!);
        Assert.EndsWith($":cert/{TestCertificates.Id(certificate)}", (string)created["certificateArn"]!, StringComparison.Ordinal);
        Assert.StartsWith("-----BEGIN RSA PRIVATE KEY-----", (string)created["keyPair"]!["PrivateKey"]!, StringComparison.Ordinal);
        AssertIssuedBy(certificate, ca);

        var described = await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/certificates/{TestCertificates.Id(certificate)}"));
        var description = described["certificateDescription"]!;
        Assert.Equal("ACTIVE", (string)description["status"]!);
        Assert.Equal(TestCertificates.Id(ca), (string)description["caCertificateId"]!);
        Assert.DoesNotContain("PRIVATE KEY", described.ToJsonString(), StringComparison.Ordinal);
        var listed = (await ApiAssert.OkAsync(await node.Http.GetAsync("/api/certificates")))["certificates"]!.AsArray();
        Assert.Contains(listed, c => (string)c!["certificateId"]! == TestCertificates.Id(certificate));
    }

    [Fact]
    public async Task CreateCertificateFromCsr_SignsTheRequestersKey_AndRefusesBadRequests()
    {
        var ca = await CaAsync();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var csr = new CertificateRequest("CN=sensor-9, O=Acme", key, HashAlgorithmName.SHA256).CreateSigningRequestPem();

        var created = await ApiAssert.OkAsync(await node.Http.PostAsync("/api/certificates", Body(new JsonObject { ["certificateSigningRequest"] = csr })));

        using var certificate = X509Certificate2.CreateFromPem((string)created["certificatePem"]!);
        Assert.Equal("CN=sensor-9, O=Acme", certificate.Subject);
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), certificate.PublicKey.ExportSubjectPublicKeyInfo());
        AssertIssuedBy(certificate, ca);
        Assert.Equal("INACTIVE", (string)(await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/certificates/{TestCertificates.Id(certificate)}")))["certificateDescription"]!["status"]!);

        // A CSR whose signature does not match its content, and text that is no CSR.
        var der = Convert.FromBase64String(string.Concat(csr.Split('\n').Where(l => !l.StartsWith("-----", StringComparison.Ordinal))));
        der[^5] ^= 0xFF;
        var tampered = "-----BEGIN CERTIFICATE REQUEST-----\n" + Convert.ToBase64String(der) + "\n-----END CERTIFICATE REQUEST-----";
        await ApiAssert.ProblemAsync(await node.Http.PostAsync("/api/certificates", Body(new JsonObject { ["certificateSigningRequest"] = tampered })), HttpStatusCode.BadRequest, "InvalidRequestException");
        await ApiAssert.ProblemAsync(await node.Http.PostAsync("/api/certificates", Body(new JsonObject { ["certificateSigningRequest"] = "-----BEGIN CERTIFICATE REQUEST-----\nnope\n-----END CERTIFICATE REQUEST-----" })), HttpStatusCode.BadRequest, "InvalidRequestException");
        await ApiAssert.ProblemAsync(await node.Http.PostAsync("/api/certificates", Body(new JsonObject())), HttpStatusCode.BadRequest, "InvalidRequestException");
    }

    [Fact]
    public async Task StatesAttachmentsAndDeletion_FollowAws()
    {
        var created = await ApiAssert.OkAsync(await node.Http.PostAsync("/api/keys-and-certificate?setAsActive=true", null));
        var (id, arn) = ((string)created["certificateId"]!, (string)created["certificateArn"]!);
        var thing = Ids.NewId("thing");
        await ApiAssert.OkAsync(await node.Http.PostAsync($"/api/things/{thing}", Body(new JsonObject())));

        using (var attach = new HttpRequestMessage(HttpMethod.Put, $"/api/things/{thing}/principals"))
        {
            attach.Headers.Add("x-amzn-principal", arn);
            await ApiAssert.OkAsync(await node.Http.SendAsync(attach));
        }

        var principals = (await ApiAssert.OkAsync(await node.Http.GetAsync($"/api/things/{thing}/principals")))["principals"]!.AsArray();
        Assert.Equal([arn.Replace(arn[..arn.IndexOf(":cert/", StringComparison.Ordinal)], "arn:aws:iot:local:000000000000", StringComparison.Ordinal)], principals.Select(p => (string)p!));
        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/certificates/{id}"), HttpStatusCode.Conflict, "CertificateStateException");   // ACTIVE
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/certificates/{id}?newStatus=INACTIVE", null));
        await ApiAssert.ProblemAsync(await node.Http.DeleteAsync($"/api/certificates/{id}"), HttpStatusCode.Conflict, "DeleteConflictException");     // attached
        await ApiAssert.ProblemAsync(await node.Http.PutAsync($"/api/certificates/{id}?newStatus=PENDING", null), HttpStatusCode.BadRequest, "InvalidRequestException");
        await ApiAssert.OkAsync(await node.Http.PutAsync($"/api/certificates/{id}?newStatus=REVOKED", null));
        await ApiAssert.ProblemAsync(await node.Http.PutAsync($"/api/certificates/{id}?newStatus=ACTIVE", null), HttpStatusCode.Conflict, "CertificateStateException");

        using (var detach = new HttpRequestMessage(HttpMethod.Delete, $"/api/things/{thing}/principals"))
        {
            detach.Headers.Add("x-amzn-principal", arn);
            await ApiAssert.OkAsync(await node.Http.SendAsync(detach));
        }

        await ApiAssert.OkAsync(await node.Http.DeleteAsync($"/api/certificates/{id}"));
        await ApiAssert.ProblemAsync(await node.Http.GetAsync($"/api/certificates/{id}"), HttpStatusCode.NotFound, "ResourceNotFoundException");

        using var missingThing = new HttpRequestMessage(HttpMethod.Put, $"/api/things/nothing-{thing}/principals");
        missingThing.Headers.Add("x-amzn-principal", arn);
        await ApiAssert.ProblemAsync(await node.Http.SendAsync(missingThing), HttpStatusCode.NotFound, "ResourceNotFoundException");
        using var notAnArn = new HttpRequestMessage(HttpMethod.Put, $"/api/things/{thing}/principals");
        notAnArn.Headers.Add("x-amzn-principal", "cert/../../etc");
        await ApiAssert.ProblemAsync(await node.Http.SendAsync(notAnArn), HttpStatusCode.BadRequest, "InvalidRequestException");
    }
}
