using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// RFC 9457 problem documents carrying the AWS exception name in <c>code</c>, so AWS SDK-style clients and
/// people both get what they expect.
/// </summary>
public static class Problems
{
    public static ProblemHttpResult NotFound(string code, string message) => Create(StatusCodes.Status404NotFound, code, message);

    public static ProblemHttpResult Create(int status, string code, string message) => TypedResults.Problem(
        statusCode: status,
        title: code,
        detail: message,
        extensions: new Dictionary<string, object?> { ["code"] = code, ["message"] = message });
}
