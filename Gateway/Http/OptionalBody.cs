using Microsoft.AspNetCore.Http;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// A body the handler reads itself (so that routing does not refuse a request for its content type: AWS lets the body
/// be absent, or any bytes), described in OpenAPI as this type and content type (<see cref="ApiReference"/>).
/// </summary>
public sealed record OptionalBody(Type Type, string ContentType = "application/json", bool Required = false)
{
    /// <summary>The JSON body, or null when the request has none (the AWS CLI then sends no content type either).</summary>
    public static async Task<T?> ReadAsync<T>(HttpRequest request) where T : class =>
        request.ContentLength is > 0 || request.Headers.TransferEncoding.Count > 0 ? await request.ReadFromJsonAsync<T>(request.HttpContext.RequestAborted) : null;
}
