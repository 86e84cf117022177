using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using OrleansIot.Grains.Abstractions.Rules;

namespace OrleansIot.Gateway.Http;

/// <summary>Control plane: rules. For now the SQL try-it endpoint (<c>POST /api/rules/test</c>).</summary>
public static class RulesApi
{
    public static IEndpointRouteBuilder MapRulesApi(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPost("/api/rules/test", TestAsync).WithTags("Rules").WithName("TestRuleSql");
        return endpoints;
    }

    /// <summary>
    /// <c>{"sql", "topic", "payload" (any JSON value) | "payloadBase64", "clientId", "principal"}</c> →
    /// <c>{"topicMatches", "selected", "output" (JSON) | "outputBase64" (bytes that are not JSON)}</c>; a syntax error is a
    /// 400 problem with the position.
    /// </summary>
    public sealed record TestBody(string? Sql, string? Topic, JsonNode? Payload, string? PayloadBase64, string? ClientId, string? Principal);

    private static async Task<IResult> TestAsync(TestBody body, IGrainFactory grains)
    {
        if (string.IsNullOrWhiteSpace(body.Sql) || string.IsNullOrEmpty(body.Topic))
        {
            return Problems.BadRequest("InvalidRequestException", "sql and topic are required.");
        }

        byte[] payload;
        try
        {
            payload = body.PayloadBase64 is { } b64 ? Convert.FromBase64String(b64)
                : body.Payload is null ? []
                : Encoding.UTF8.GetBytes(body.Payload.ToJsonString());
        }
        catch (FormatException)
        {
            return Problems.BadRequest("InvalidRequestException", "payloadBase64 is not base64.");
        }

        var result = await grains.GetGrain<IRuleSqlGrain>(0).Test(new RuleTestRequest(body.Sql, body.Topic, payload, body.ClientId, body.Principal));
        if (result.Error is not null)
        {
            return TypedResults.Problem(
                statusCode: StatusCodes.Status400BadRequest,
                title: "SqlParseException",
                detail: result.Error,
                extensions: new Dictionary<string, object?> { ["code"] = "SqlParseException", ["message"] = result.Error, ["position"] = result.ErrorPosition });
        }

        var response = new JsonObject { ["topicMatches"] = result.TopicMatches, ["selected"] = result.Selected };
        if (result.Output is { } output)
        {
            try
            {
                response["output"] = output.Length == 0 ? null : JsonNode.Parse(output);
            }
            catch (JsonException)
            {
                response["outputBase64"] = Convert.ToBase64String(output);
            }
        }

        return TypedResults.Text(response.ToJsonString(), "application/json");
    }
}
