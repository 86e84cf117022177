using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Gateway.Http;

/// <summary>An <see cref="ApiException"/> from any endpoint becomes problem+json with AWS's exception name and message.</summary>
internal sealed class ApiErrors : IExceptionHandler
{
    public async ValueTask<bool> TryHandleAsync(HttpContext httpContext, Exception exception, CancellationToken cancellationToken)
    {
        if (exception is not ApiException registry)
        {
            return false;
        }

        await Problems.Create(registry.Status, registry.Code, registry.Message).ExecuteAsync(httpContext);
        return true;
    }
}
