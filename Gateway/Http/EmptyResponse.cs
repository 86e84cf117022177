using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;

namespace OrleansIot.Gateway.Http;

/// <summary>The empty JSON object (<c>{}</c>) AWS answers a change with nothing to report.</summary>
public sealed record EmptyResponse
{
    private static readonly EmptyResponse Instance = new();

    /// <summary>200 with <c>{}</c>.</summary>
    public static Ok<EmptyResponse> Ok => TypedResults.Ok(Instance);
}
