using System.Net;
using System.Text.Json.Nodes;

namespace OrleansIot.Tests.Infrastructure;

/// <summary>Control-plane answers: a success with its JSON, or AWS's problem+json with an exception name.</summary>
public static class ApiAssert
{
    /// <summary>Asserts success and returns the body as JSON (the status and body in the failure message otherwise).</summary>
    public static async Task<JsonNode> OkAsync(HttpResponseMessage response)
    {
        ArgumentNullException.ThrowIfNull(response);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>Asserts the status and the AWS exception name, in <c>code</c> and where AWS's SDKs read it (<c>x-amzn-ErrorType</c>).</summary>
    public static async Task ProblemAsync(HttpResponseMessage response, HttpStatusCode status, string code)
    {
        ArgumentNullException.ThrowIfNull(response);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(status == response.StatusCode, $"{(int)response.StatusCode}: {text}");
        Assert.Contains($"\"code\":\"{code}\"", text, StringComparison.Ordinal);
        Assert.Equal(code, response.Headers.TryGetValues("x-amzn-ErrorType", out var types) ? types.Single() : null);
    }
}
