using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// The one place errors become answers: an <see cref="ApiException"/> from any endpoint or grain becomes problem+json
/// with AWS's exception name and message; a request that cannot be bound (malformed JSON, a value of the wrong type, a
/// missing body or parameter) becomes 400 <c>InvalidRequestException</c> saying what was wrong, never a bare 400; a
/// database failure that passes (PostgreSQL restarting, a pooled connection it broke) becomes 503
/// <c>ServiceUnavailableException</c> with <c>Retry-After</c>, which AWS SDKs retry, not a 500.
/// </summary>
internal sealed partial class ApiErrors : IExceptionHandler
{
    /// <summary>ASP.NET Core's message for a query or route value that does not parse: <c>Failed to bind parameter "int? maxResults" from "x".</c></summary>
    [System.Text.RegularExpressions.GeneratedRegex("^Failed to bind parameter \"(?<type>.+) (?<name>\\w+)\" from \"(?<value>.*)\"\\.$")]
    private static partial System.Text.RegularExpressions.Regex UnboundParameter();

    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        switch (exception)
        {
            case ApiException api:
                await Problems.Create(api.Status, api.Code, api.Message).ExecuteAsync(httpContext);
                return true;
            case SqlParseFailedException sql:
                await TypedResults.Problem(
                    statusCode: StatusCodes.Status400BadRequest,
                    title: "SqlParseException",
                    detail: sql.Message,
                    extensions: new Dictionary<string, object?> { ["code"] = "SqlParseException", ["message"] = sql.Message, ["position"] = sql.Position })
                    .ExecuteAsync(httpContext);
                return true;
            case BadHttpRequestException bad:
                var detail = bad.InnerException is System.Text.Json.JsonException json ? $"The body is not the JSON this call takes: {json.Message}"
                    : UnboundParameter().Match(bad.Message) is { Success: true } m ? $"{char.ToLowerInvariant(m.Groups["name"].Value[0])}{m.Groups["name"].Value[1..]} '{m.Groups["value"].Value}' is not a valid {m.Groups["type"].Value.TrimEnd('?')}."
                    : bad.Message;
                await Problems.Create(bad.StatusCode, bad.StatusCode == StatusCodes.Status413PayloadTooLarge ? "RequestEntityTooLargeException" : "InvalidRequestException", detail)
                    .ExecuteAsync(httpContext);
                return true;
            case var passing when DatabaseErrors.IsTransient(passing):
                httpContext.Response.Headers.RetryAfter = "1";
                await Problems.Create(StatusCodes.Status503ServiceUnavailable, "ServiceUnavailableException",
                    "The database is unavailable for a moment (restarting, or a connection to it broke); try again.").ExecuteAsync(httpContext);
                return true;
            default:
                return false;
        }
    }
}
