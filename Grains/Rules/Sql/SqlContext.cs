using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrleansIot.Grains.Rules.Sql;

/// <summary>What a rule is evaluated against: one message and where it came from.</summary>
internal sealed class SqlContext
{
    private JsonNode? _root;
    private bool _parsed;
    private bool _isJson;

    public SqlContext(string topic, byte[] payload, string? clientId = null, string? principal = null, long? timestampMs = null, string? traceId = null)
    {
        Topic = topic;
        Payload = payload;
        ClientId = clientId;
        Principal = principal;
        TimestampMs = timestampMs ?? DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        TraceId = traceId;
    }

    public string Topic { get; }

    public byte[] Payload { get; }

    public string? ClientId { get; }

    public string? Principal { get; }

    public long TimestampMs { get; }

    public string? TraceId { get; }

    /// <summary>The account id for <c>accountid()</c>.</summary>
    public string AccountId { get; init; } = "000000000000";

    /// <summary>The payload as JSON (parsed once, on first use); false for a payload that is not JSON (AWS: fields are then Undefined).</summary>
    public bool TryGetJson(out JsonNode? root)
    {
        if (!_parsed)
        {
            _parsed = true;
            try
            {
                _root = JsonNode.Parse(Payload, documentOptions: new JsonDocumentOptions { MaxDepth = 64 });
                _isJson = true;
            }
            catch (JsonException)
            {
                _isJson = false;
            }
        }

        root = _root;
        return _isJson;
    }

    /// <summary>The whole payload as a value (<c>*</c>): the JSON value, or Undefined for a payload that is not JSON.</summary>
    public SqlValue Whole() => TryGetJson(out var root) ? SqlValue.FromJson(root) : SqlValue.Undefined;
}
