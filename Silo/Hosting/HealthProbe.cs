namespace OrleansIot.Silo.Hosting;

/// <summary>
/// <c>OrleansIot.Silo probe [URL]</c>: asks a node whether it is ready (default <c>http://127.0.0.1:8080/readyz</c>) and
/// exits 0 when it answers 200 within 5 s, else 1 with the reason. For a container's health check, where the runtime
/// image has no curl.
/// </summary>
public static class HealthProbe
{
    public const string DefaultUrl = "http://127.0.0.1:8080/readyz";

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        var url = args.Count > 0 ? args[0] : DefaultUrl;
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
        {
            await Console.Error.WriteLineAsync($"probe: '{url}' is not an http(s) URL");
            return 2;
        }

        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(5) };
        try
        {
            using var response = await http.GetAsync(uri);
            if (response.IsSuccessStatusCode)
            {
                return 0;
            }

            await Console.Error.WriteLineAsync($"probe: {uri} answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
            return 1;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            await Console.Error.WriteLineAsync($"probe: {uri}: {ex.Message}");
            return 1;
        }
    }
}
