using System.Diagnostics;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using OrleansIot.Tests.Infrastructure;

namespace OrleansIot.Tests.Gateway;

/// <summary>
/// A fleet that reconnects (after an outage, a rolling restart) does not pay a full TLS handshake per device: the
/// mTLS listener resumes sessions, by ticket in TLS 1.3 and by session id in TLS 1.2. A resumed session still carries
/// the device's certificate, so the CONNECT on it is authorized as that device. Seen by OpenSSL's own client, as a
/// device's TLS stack would.
/// </summary>
public sealed class TlsResumptionTests(SecureNodeFixture node) : IClassFixture<SecureNodeFixture>
{
    [Theory]
    [InlineData("-tls1_3")]
    [InlineData("-tls1_2")]
    public async Task AReconnectingDevice_ResumesItsTlsSession_AndIsStillAuthorizedByItsCertificate(string version)
    {
        await Devices.CreatePolicyAsync(node.Http, "per-thing", Devices.PerThingPolicy);
        var thing = "resume-" + Guid.NewGuid().ToString("N")[..8];
        var device = await Devices.CreateAsync(node.Http, thing, "per-thing");
        var directory = Directory.CreateTempSubdirectory("oiot-resume-");
        try
        {
            var certificate = Path.Combine(directory.FullName, "device.crt");
            var key = Path.Combine(directory.FullName, "device.key");
            var session = Path.Combine(directory.FullName, "session.pem");
            await File.WriteAllTextAsync(certificate, device.Certificate.ExportCertificatePem());
            await File.WriteAllTextAsync(key, device.Certificate.GetRSAPrivateKey()!.ExportPkcs8PrivateKeyPem());

            var first = await ConnectAsync(thing, version, certificate, key, "-sess_out", session);
            var second = await ConnectAsync(thing, version, certificate, key, "-sess_in", session);

            Assert.True(first.Accepted, "the first connection was not accepted:\n" + first.Output);
            Assert.Contains("New, TLS", first.Output, StringComparison.Ordinal);
            Assert.True(second.Accepted, "the resumed connection was not accepted:\n" + second.Output);
            Assert.Contains("Reused, TLS", second.Output, StringComparison.Ordinal);
        }
        finally
        {
            directory.Delete(recursive: true);
        }
    }

    /// <summary>One connection of <c>openssl s_client</c> with the device's certificate: an MQTT 3.1.1 CONNECT, then CONNACK.</summary>
    private async Task<(bool Accepted, string Output)> ConnectAsync(string clientId, string version, string certificate, string key, params string[] session)
    {
        var start = new ProcessStartInfo("openssl")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var argument in (string[])["s_client", "-connect", $"127.0.0.1:{node.TlsPort}", "-servername", "localhost", version, "-cert", certificate, "-key", key, .. session])
        {
            start.ArgumentList.Add(argument);
        }

        using var process = Process.Start(start) ?? throw new InvalidOperationException("openssl did not start");
        var errors = process.StandardError.ReadToEndAsync();
        await process.StandardInput.BaseStream.WriteAsync(Connect(clientId));
        await process.StandardInput.BaseStream.FlushAsync();

        // Read until the CONNACK (0x20 0x02 flags code) has come, then end the session (s_client exits at end of input).
        var output = new MemoryStream();
        var buffer = new byte[4096];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        int? code = null;
        while (code is null && !timeout.IsCancellationRequested)
        {
            var read = await process.StandardOutput.BaseStream.ReadAsync(buffer, timeout.Token);
            if (read == 0)
            {
                break;
            }

            output.Write(buffer, 0, read);
            code = ConnackCode(output.ToArray());
        }

        process.StandardInput.Close();
        await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(15));
        await process.StandardOutput.BaseStream.CopyToAsync(output);
        var text = Encoding.Latin1.GetString(output.ToArray()) + await errors;
        return (code == 0, text);
    }

    private static byte[] Connect(string clientId)
    {
        var id = Encoding.UTF8.GetBytes(clientId);
        byte[] variable = [0, 4, (byte)'M', (byte)'Q', (byte)'T', (byte)'T', 4, 0x02, 0, 60];   // MQTT 3.1.1, clean session, keep-alive 60 s
        return [0x10, (byte)(variable.Length + 2 + id.Length), .. variable, (byte)(id.Length >> 8), (byte)id.Length, .. id];
    }

    /// <summary>The return code of the CONNACK in what s_client printed (its text has no 0x02 0x00 after a 0x20), or null.</summary>
    private static int? ConnackCode(byte[] output)
    {
        for (var i = 0; i + 3 < output.Length; i++)
        {
            if (output[i] == 0x20 && output[i + 1] == 0x02 && output[i + 2] <= 1)
            {
                return output[i + 3];
            }
        }

        return null;
    }
}
