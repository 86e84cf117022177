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

    /// <summary>Shadows read for <c>get_thing_shadow</c>, by (thing, shadow name); null = has none.</summary>
    private Dictionary<(string, string), JsonNode?>? _shadows;

    /// <summary>
    /// <c>get_thing_shadow</c>: the shadow document, Undefined when the thing has no such shadow. Evaluation is
    /// synchronous, so a shadow not read yet stops it with <see cref="ShadowNeededException"/>; the caller reads the
    /// shadow (<see cref="AddShadow"/>) and evaluates again.
    /// </summary>
    public SqlValue Shadow(string thingName, string shadowName) =>
        _shadows is not null && _shadows.TryGetValue((thingName, shadowName), out var document)
            ? (document is null ? SqlValue.Undefined : SqlValue.FromJson(document))
            : throw new ShadowNeededException(thingName, shadowName);

    /// <summary>Gives <see cref="Shadow"/> a document (null: none) read for this message.</summary>
    public void AddShadow(string thingName, string shadowName, byte[]? document) =>
        (_shadows ??= [])[(thingName, shadowName)] = document is null ? null : JsonNode.Parse(document);

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

/// <summary>Thrown by <c>get_thing_shadow</c> for a shadow the context has not read yet (see <see cref="SqlContext.Shadow"/>).</summary>
internal sealed class ShadowNeededException(string thingName, string shadowName)
    : Exception($"The shadow '{shadowName}' of '{thingName}' is needed.")
{
    public string ThingName { get; } = thingName;

    public string ShadowName { get; } = shadowName;
}
