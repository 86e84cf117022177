using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Gateway.Jobs;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.ApiKeys;

namespace OrleansIot.Gateway.Http;

/// <summary>
/// The device Jobs API over HTTPS with AWS's iot-jobs-data paths (<c>GetPendingJobExecutions</c>
/// <c>GET /things/{thingName}/jobs</c>, <c>StartNextPendingJobExecution</c> <c>PUT /things/{thingName}/jobs/$next</c>,
/// <c>DescribeJobExecution</c> <c>GET /things/{thingName}/jobs/{jobId}</c>, <c>UpdateJobExecution</c>
/// <c>POST /things/{thingName}/jobs/{jobId}</c>): a device calls it with its certificate where its policies allow the
/// action on <c>thing/{thingName}</c> (AWS: these actions are for the HTTPS jobs endpoint only).
/// </summary>
public static class JobsDataApi
{
    private const int MaxBodyBytes = 64 * 1024;

    public static IEndpointRouteBuilder MapJobsDataApi(this IEndpointRouteBuilder endpoints)
    {
        var jobs = endpoints.MapGroup("/things/{thingName}/jobs").WithTags("Jobs (device)").ChangedBy(ApiKeyRoles.Operator);
        jobs.MapGet("", GetPendingAsync).WithName("GetPendingJobExecutions").WithMetadata(DeviceAccess.OnThing("iot:GetPendingJobExecutions"))
            .Produces<JsonObject>(contentType: "application/json");
        jobs.MapPut("/{jobId}", StartNextAsync).WithName("StartNextPendingJobExecution").WithMetadata(DeviceAccess.OnThing("iot:StartNextPendingJobExecution"))
            .WithMetadata(new OptionalBody(typeof(JsonObject))).Produces<JsonObject>(contentType: "application/json");
        jobs.MapGet("/{jobId}", DescribeAsync).WithName("DeviceDescribeJobExecution").WithMetadata(DeviceAccess.OnThing("iot:DescribeJobExecution"))
            .Produces<JsonObject>(contentType: "application/json");
        jobs.MapPost("/{jobId}", UpdateAsync).WithName("UpdateJobExecution").WithMetadata(DeviceAccess.OnThing("iot:UpdateJobExecution"))
            .WithMetadata(new OptionalBody(typeof(JsonObject), Required: true)).Produces<JsonObject>(contentType: "application/json");
        return endpoints;
    }


    private static async Task<ContentHttpResult> GetPendingAsync(string thingName, DeviceJobs jobs) => Json(await jobs.GetPendingAsync(thingName));

    private static async Task<ContentHttpResult> StartNextAsync(string thingName, string jobId, HttpRequest http, DeviceJobs jobs)
    {
        if (jobId != "$next")
        {
            throw ApiException.NotFound("Only $next can be started: PUT /things/{thingName}/jobs/$next.");
        }

        return Json(await jobs.StartNextAsync(thingName, await ReadAsync(http)));
    }

    private static async Task<ContentHttpResult> DescribeAsync(string thingName, string jobId, long? executionNumber, bool? includeJobDocument, DeviceJobs jobs) =>
        Json(await jobs.DescribeAsync(thingName, jobId, new DeviceJobs.Request(null, null, null, executionNumber, includeJobDocument, null, null, null)));

    private static async Task<ContentHttpResult> UpdateAsync(string thingName, string jobId, HttpRequest http, DeviceJobs jobs) =>
        Json(await jobs.UpdateAsync(thingName, jobId, await ReadAsync(http)));

    private static async Task<DeviceJobs.Request> ReadAsync(HttpRequest http)
    {
        if (http.ContentLength > MaxBodyBytes)
        {
            throw new ApiException(413, "RequestEntityTooLargeException", $"The body is larger than {MaxBodyBytes} bytes.");
        }

        using var body = new MemoryStream();
        var buffer = new byte[8192];
        int read;
        while ((read = await http.Body.ReadAsync(buffer, http.HttpContext.RequestAborted)) > 0)
        {
            if (body.Length + read > MaxBodyBytes)
            {
                throw new ApiException(413, "RequestEntityTooLargeException", $"The body is larger than {MaxBodyBytes} bytes.");
            }

            body.Write(buffer, 0, read);
        }

        try
        {
            return DeviceJobs.Parse(body.ToArray());
        }
        catch (JsonException ex)
        {
            throw ApiException.Invalid($"The body is not the JSON this call takes: {ex.Message}");
        }
    }

    private static ContentHttpResult Json(JsonObject body) => TypedResults.Content(body.ToJsonString(Grains.Abstractions.Jobs.JobJson.Options), "application/json");
}
