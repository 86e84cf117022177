using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json.Nodes;
using MQTTnet;
using MQTTnet.Formatter;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>
/// A node with its TLS listeners open and the server certificate issued by its platform CA (nothing configured), as
/// a fresh deployment runs; anonymous development access stays on the plain port (the embedded default).
/// </summary>
public class SecureNodeFixture : NodeFixture
{
    protected override bool Tls => true;
}

/// <summary>A device's credentials as the control plane made them: a certificate (with its key) for a thing.</summary>
public sealed record DeviceCredentials(string ThingName, string CertificateId, string CertificateArn, X509Certificate2 Certificate);

/// <summary>Sets devices up through the HTTP API as an operator would, and connects them over mTLS.</summary>
public static class Devices
{
    /// <summary>
    /// AWS's usual per-thing policy: connect as the thing, and publish, subscribe and receive only under
    /// <c>devices/{thing}/</c> and the thing's own shadow topics.
    /// </summary>
    public const string PerThingPolicy = """
        {"Version":"2012-10-17","Statement":[
          {"Effect":"Allow","Action":"iot:Connect","Resource":"arn:aws:iot:*:*:client/${iot:Connection.Thing.ThingName}"},
          {"Effect":"Allow","Action":["iot:Publish","iot:Receive"],"Resource":["arn:aws:iot:*:*:topic/devices/${iot:Connection.Thing.ThingName}/*","arn:aws:iot:*:*:topic/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]},
          {"Effect":"Allow","Action":"iot:Subscribe","Resource":["arn:aws:iot:*:*:topicfilter/devices/${iot:Connection.Thing.ThingName}/*","arn:aws:iot:*:*:topicfilter/$aws/things/${iot:Connection.Thing.ThingName}/shadow/*"]}
        ]}
        """;

    private static StringContent Json(JsonNode json) => new(json.ToJsonString(), Encoding.UTF8, "application/json");

    /// <summary>Creates the policy if needed (a unique name per document is the caller's business).</summary>
    public static async Task CreatePolicyAsync(HttpClient http, string policyName, string document)
    {
        ArgumentNullException.ThrowIfNull(http);
        var response = await http.PostAsync($"/api/policies/{policyName}", Json(new JsonObject { ["policyDocument"] = document }));
        if (response.StatusCode != System.Net.HttpStatusCode.Conflict)
        {
            await ApiAssert.OkAsync(response);
        }
    }

    /// <summary>A thing, an ACTIVE certificate from the platform CA attached to it, and <paramref name="policyName"/> attached to the certificate.</summary>
    public static async Task<DeviceCredentials> CreateAsync(HttpClient http, string thingName, string? policyName, bool active = true)
    {
        ArgumentNullException.ThrowIfNull(http);
        await ApiAssert.OkAsync(await http.PostAsync($"/api/things/{thingName}", Json(new JsonObject())));
        var created = await ApiAssert.OkAsync(await http.PostAsync($"/api/keys-and-certificate?setAsActive={(active ? "true" : "false")}", null));
        var arn = (string)created["certificateArn"]!;
        if (policyName is not null)
        {
            await ApiAssert.OkAsync(await http.PutAsync($"/api/target-policies/{policyName}", Json(new JsonObject { ["target"] = arn })));
        }

        using var attach = new HttpRequestMessage(HttpMethod.Put, $"/api/things/{thingName}/principals");
        attach.Headers.Add("x-amzn-principal", arn);
        await ApiAssert.OkAsync(await http.SendAsync(attach));
        var certificate = WithKey((string)created["certificatePem"]!, (string)created["keyPair"]!["PrivateKey"]!);
        return new DeviceCredentials(thingName, (string)created["certificateId"]!, arn, certificate);
    }

    /// <summary>A certificate with its private key, usable by SslStream as a client certificate.</summary>
    public static X509Certificate2 WithKey(string certificatePem, string keyPem)
    {
        using var pem = X509Certificate2.CreateFromPem(certificatePem, keyPem);
        return X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
    }

    /// <summary>The platform CA devices trust (GET /api/cacertificate).</summary>
    public static async Task<X509Certificate2> PlatformCaAsync(HttpClient http)
    {
        ArgumentNullException.ThrowIfNull(http);
        var ca = await ApiAssert.OkAsync(await http.GetAsync("/api/cacertificate"));
        return X509Certificate2.CreateFromPem((string)ca["certificatePem"]!);
    }

    /// <summary>True when the server's certificate chains to <paramref name="ca"/> alone.</summary>
    public static bool ChainsTo(X509Certificate? presented, X509Certificate2 ca)
    {
        if (presented is null)
        {
            return false;
        }

        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(X509CertificateLoader.LoadCertificate(presented.GetRawCertData()));
    }

    /// <summary>Client options for MQTT over mTLS to the node's TLS port, trusting only the platform CA.</summary>
    public static MqttClientOptionsBuilder Mtls(NodeFixture node, string clientId, X509Certificate2? certificate, X509Certificate2 ca, MqttProtocolVersion version = MqttProtocolVersion.V500)
    {
        ArgumentNullException.ThrowIfNull(node);
        return new MqttClientOptionsBuilder()
            .WithTcpServer("127.0.0.1", node.TlsPort)
            .WithClientId(clientId)
            .WithProtocolVersion(version)
            .WithTimeout(TimeSpan.FromSeconds(10))
            .WithTlsOptions(o =>
            {
                o.UseTls().WithCertificateValidationHandler(e => ChainsTo(e.Certificate, ca));
                if (certificate is not null)
                {
                    o.WithClientCertificates([certificate]);
                }
            });
    }
}
