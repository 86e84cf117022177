using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Scalar.AspNetCore;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// The HTTP API described: the OpenAPI document of every endpoint (<c>/openapi/v1.json</c>, operation ids are AWS's
/// operation names, schemas from the handlers' typed requests and results) and an interactive reference at
/// <c>/docs</c> (Scalar, its script served by the node itself: no CDN, works offline). Neither needs a key.
/// </summary>
public static class ApiReference
{
    public const string DocumentPath = "/openapi/v1.json";

    internal static IServiceCollection AddApiReference(IServiceCollection services) =>
        services.AddOpenApi(o => o.AddOperationTransformer(async (operation, context, cancellationToken) =>
        {
            // A body AWS lets callers leave out is read by the handler (routing would refuse a request without a
            // content type if it were declared with Accepts), and described here.
            if (context.Description.ActionDescriptor.EndpointMetadata.OfType<OptionalBody>().FirstOrDefault() is { } optional)
            {
                var schema = await context.GetOrCreateSchemaAsync(optional.Type, null, cancellationToken);
                operation.RequestBody = new Microsoft.OpenApi.OpenApiRequestBody
                {
                    Required = optional.Required,
                    Content = new Dictionary<string, Microsoft.OpenApi.OpenApiMediaType> { [optional.ContentType] = new() { Schema = schema } },
                };
            }
        }).AddDocumentTransformer((document, _, _) =>
        {
            document.Info.Title = "OrleansIot";
            document.Info.Description =
                "AWS IoT Core's control plane (under /api) and data plane (/things/{thingName}/shadow, /topics/{topic}) on Orleans. "
                + "Authenticate with 'Authorization: Bearer <API key>', or sign with SigV4 using the key's accessKeyId and secretAccessKey "
                + "(AWS CLI and SDKs: --endpoint-url http://host:8080/api for the control plane, http://host:8080 for the data plane). "
                + "Errors are problem+json with AWS's exception name in 'code' and in the x-amzn-ErrorType header.";
            return Task.CompletedTask;
        }));

    public static IEndpointRouteBuilder MapApiReference(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapOpenApi(DocumentPath);
        // Scalar's default fonts come from its CDN: off, so the page needs nothing but the node.
        endpoints.MapScalarApiReference("/docs", o => o.WithTitle("OrleansIot API").WithOpenApiRoutePattern(DocumentPath).DisableDefaultFonts());
        return endpoints;
    }
}
