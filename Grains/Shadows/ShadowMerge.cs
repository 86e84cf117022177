using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrleansIot.Grains.Shadows;

/// <summary>A validated update request.</summary>
/// <param name="State">True when the request has a <c>state</c> node (false only for <c>"state": null</c>).</param>
/// <param name="HasDesired">The request names <c>state.desired</c> (an object, or null to remove the section).</param>
/// <param name="HasReported">The same for <c>state.reported</c>.</param>
internal sealed record ShadowUpdate(
    JsonObject? Desired,
    bool HasDesired,
    JsonObject? Reported,
    bool HasReported,
    string? ClientToken,
    long? Version);

/// <summary>
/// The shadow engine, pure: request validation with AWS's errors, the merge (null deletes, arrays replace whole),
/// per-leaf metadata, the delta, and the documents AWS publishes. No I/O, so every rule is tested without a cluster.
/// </summary>
internal static class ShadowMerge
{
    /// <summary>
    /// The nesting AWS allows, as its error message states it ("maximum is 6": the section and 5 levels of fields
    /// inside it, which is how AWS's limits page counts). So <c>desired.a.b.c.d.e</c> is fine and one more level is not;
    /// arrays count as levels too.
    /// </summary>
    public const int MaxDepth = 6;

    /// <summary>Objects and arrays nested in a section, the section counting as 1.</summary>
    private const int MaxContainers = MaxDepth - 1;

    /// <summary>Longest <c>clientToken</c> in UTF-8 bytes.</summary>
    public const int MaxClientTokenBytes = 64;

    // Duplicate properties are refused while parsing (AWS: Invalid JSON), not found half-way through a merge.
    private static readonly JsonDocumentOptions ParseOptions = new() { MaxDepth = 64, AllowDuplicateProperties = false };
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>Validates an <c>/update</c> request document.</summary>
    /// <remarks><paramref name="clientToken"/> is set as soon as it is read, so a rejection can echo it.</remarks>
    public static ShadowError? TryParseUpdate(ReadOnlySpan<byte> payload, out ShadowUpdate? update, out string? clientToken)
    {
        update = null;
        clientToken = null;
        if (ParseObject(payload, out var root) is { } error)
        {
            return error;
        }

        if (ReadClientToken(root!, out var token) is { } tokenError)
        {
            return tokenError;
        }

        clientToken = token;

        long? version = null;
        if (root!.TryGetPropertyValue("version", out var versionNode))
        {
            if (versionNode is not JsonValue v || v.GetValueKind() != JsonValueKind.Number || !v.TryGetValue<long>(out var n) || n < 0)
            {
                return ShadowError.InvalidVersion;
            }

            version = n;
        }

        if (!root.TryGetPropertyValue("state", out var stateNode))
        {
            return ShadowError.MissingState;
        }

        if (stateNode is null)
        {
            // "Setting the device's shadow state to null does not delete the shadow": both sections go, version + 1.
            update = new ShadowUpdate(null, true, null, true, token, version);
            return null;
        }

        if (stateNode is not JsonObject state)
        {
            return ShadowError.StateNotObject;
        }

        JsonObject? desired = null, reported = null;
        bool hasDesired = false, hasReported = false;
        foreach (var (name, node) in state)
        {
            switch (name)
            {
                case "desired":
                    if (Section(node, ShadowError.DesiredNotObject, out desired) is { } d)
                    {
                        return d;
                    }

                    hasDesired = true;
                    break;
                case "reported":
                    if (Section(node, ShadowError.ReportedNotObject, out reported) is { } r)
                    {
                        return r;
                    }

                    hasReported = true;
                    break;
                default:
                    return ShadowError.InvalidStateNode;
            }
        }

        update = new ShadowUpdate(desired, hasDesired, reported, hasReported, token, version);
        return null;
    }

    /// <summary>Reads the optional <c>clientToken</c> of a get or delete request (an empty payload is fine).</summary>
    public static ShadowError? TryParseToken(ReadOnlySpan<byte> payload, out string? clientToken)
    {
        clientToken = null;
        if (payload.IsEmpty)
        {
            return null;
        }

        if (ParseObject(payload, out var root) is { } error)
        {
            return error;
        }

        return ReadClientToken(root!, out clientToken);
    }

    /// <summary>
    /// Applies an accepted-to-be update to a copy of <paramref name="current"/>: version check (409), merge with
    /// metadata stamped <paramref name="now"/> (epoch seconds), size check of the merged state (413).
    /// </summary>
    public static ShadowError? Apply(ShadowDocument current, ShadowUpdate update, long now, int maxStateBytes, out ShadowDocument? next)
    {
        next = null;
        if (update.Version is { } expected && expected != current.Version)
        {
            return ShadowError.VersionConflict;
        }

        var doc = current.CloneState();
        if (update.HasDesired)
        {
            (doc.Desired, doc.DesiredMetadata) = MergeSection(doc.Desired, doc.DesiredMetadata, update.Desired, now);
        }

        if (update.HasReported)
        {
            (doc.Reported, doc.ReportedMetadata) = MergeSection(doc.Reported, doc.ReportedMetadata, update.Reported, now);
        }

        if (StateBytes(doc) > maxStateBytes)
        {
            return ShadowError.TooLarge;
        }

        doc.Version = current.Version + 1;
        doc.Timestamp = now;
        doc.Exists = true;
        doc.DeletedAt = null;
        next = doc;
        return null;
    }

    /// <summary>UTF-8 size of the stored state (desired and reported; metadata does not count, as AWS).</summary>
    public static int StateBytes(ShadowDocument doc) =>
        (doc.Desired is null ? 0 : Write(doc.Desired).Length) + (doc.Reported is null ? 0 : Write(doc.Reported).Length);

    /// <summary>
    /// The delta: every desired field that reported lacks or holds differently; nested objects compared leaf by
    /// leaf (the path kept from the root), arrays and other values compared whole. <c>null</c> when none differ.
    /// </summary>
    public static JsonObject? Delta(JsonObject? desired, JsonObject? reported)
    {
        if (desired is null)
        {
            return null;
        }

        var delta = new JsonObject();
        foreach (var (name, want) in desired)
        {
            if (reported is null || !reported.TryGetPropertyValue(name, out var have))
            {
                delta[name] = want?.DeepClone();
            }
            else if (want is JsonObject wantObject && have is JsonObject haveObject)
            {
                if (Delta(wantObject, haveObject) is { } nested)
                {
                    delta[name] = nested;
                }
            }
            else if (!JsonNode.DeepEquals(want, have))
            {
                delta[name] = want?.DeepClone();
            }
        }

        return delta.Count > 0 ? delta : null;
    }

    /// <summary>
    /// Whether an accepted update publishes <c>/update/delta</c>: a delta remains and the request set desired state
    /// or touched a field that is in the delta (e.g. removed a reported field still desired, or reported a value
    /// that still differs). A report of fields nobody desires does not repeat the delta.
    /// </summary>
    public static bool PublishesDelta(ShadowUpdate update, JsonObject? delta)
    {
        if (delta is null)
        {
            return false;
        }

        if (update.HasDesired && update.Desired is not null)
        {
            return true;
        }

        if (update.Reported is { } reported)
        {
            foreach (var (name, _) in reported)
            {
                if (delta.ContainsKey(name))
                {
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>The metadata of a value set at <paramref name="at"/>: per leaf, arrays element by element.</summary>
    public static JsonNode Metadata(JsonNode? value, long at) => value switch
    {
        JsonObject o => MetadataObject(o, at),
        JsonArray a => new JsonArray([.. a.Select(e => (JsonNode?)Metadata(e, at))]),
        _ => new JsonObject { ["timestamp"] = at },
    };

    // ---- documents (the exact shapes AWS publishes) ----
    // Written straight from the live nodes with one writer each: no tree is cloned to be serialized.

    /// <summary><c>/get/accepted</c> and HTTP GET: state (desired, reported, delta), metadata, version, timestamp.</summary>
    public static byte[] FullDocument(ShadowDocument doc, long now, string? clientToken) => Json(w =>
    {
        w.WriteStartObject("state");
        Property(w, "desired", doc.Desired);
        Property(w, "reported", doc.Reported);
        Property(w, "delta", Delta(doc.Desired, doc.Reported));
        w.WriteEndObject();
        WriteMetadata(w, doc);
        w.WriteNumber("version", doc.Version);
        w.WriteNumber("timestamp", now);
        Token(w, clientToken);
    });

    /// <summary><c>/update/accepted</c>: only the request's sections, as sent, with their metadata.</summary>
    public static byte[] AcceptedDocument(ShadowUpdate update, ShadowDocument next, string? clientToken) => Json(w =>
    {
        w.WriteStartObject("state");
        if (update.HasDesired)
        {
            NullableProperty(w, "desired", update.Desired);
        }

        if (update.HasReported)
        {
            NullableProperty(w, "reported", update.Reported);
        }

        w.WriteEndObject();
        w.WriteStartObject("metadata");
        if (update.Desired is not null)
        {
            w.WritePropertyName("desired");
            WriteMetadata(w, update.Desired, next.Timestamp);
        }

        if (update.Reported is not null)
        {
            w.WritePropertyName("reported");
            WriteMetadata(w, update.Reported, next.Timestamp);
        }

        w.WriteEndObject();
        w.WriteNumber("version", next.Version);
        w.WriteNumber("timestamp", next.Timestamp);
        Token(w, clientToken);
    });

    /// <summary><c>/update/delta</c>: the delta without a wrapper, its metadata from desired.</summary>
    public static byte[] DeltaDocument(JsonObject delta, ShadowDocument next, string? clientToken) => Json(w =>
    {
        w.WriteNumber("version", next.Version);
        w.WriteNumber("timestamp", next.Timestamp);
        w.WritePropertyName("state");
        delta.WriteTo(w);
        w.WritePropertyName("metadata");
        WriteDeltaMetadata(w, delta, next.DesiredMetadata);
        Token(w, clientToken);
    });

    /// <summary><c>/update/documents</c>: the document before and after (previous is null for a new shadow).</summary>
    public static byte[] DocumentsDocument(ShadowDocument previous, ShadowDocument current, string? clientToken) => Json(w =>
    {
        w.WritePropertyName("previous");
        if (previous.Exists)
        {
            WriteSnapshot(w, previous);
        }
        else
        {
            w.WriteNullValue();
        }

        w.WritePropertyName("current");
        WriteSnapshot(w, current);
        w.WriteNumber("timestamp", current.Timestamp);
        Token(w, clientToken);
    });

    /// <summary><c>/delete/accepted</c>: <c>{"version":N,"timestamp":T}</c>.</summary>
    public static byte[] DeletedDocument(long version, long now, string? clientToken) => Json(w =>
    {
        w.WriteNumber("version", version);
        w.WriteNumber("timestamp", now);
        Token(w, clientToken);
    });

    /// <summary>AWS's error document.</summary>
    public static byte[] ErrorDocument(ShadowError error, long now, string? clientToken) => Json(w =>
    {
        w.WriteNumber("code", error.Code);
        w.WriteString("message", error.Message);
        w.WriteNumber("timestamp", now);
        Token(w, clientToken);
    });

    /// <summary>The stored form: <c>{"state":{…},"metadata":{…},"timestamp":T}</c>.</summary>
    public static byte[] StoredDocument(ShadowDocument doc) => Json(w =>
    {
        w.WriteStartObject("state");
        Property(w, "desired", doc.Desired);
        Property(w, "reported", doc.Reported);
        w.WriteEndObject();
        WriteMetadata(w, doc);
        w.WriteNumber("timestamp", doc.Timestamp);
    });

    /// <summary>Compact UTF-8 JSON, non-ASCII characters as they are (as AWS sends them).</summary>
    public static byte[] Write(JsonNode node)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            node.WriteTo(writer);
        }

        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>An object written by <paramref name="body"/>.</summary>
    private static byte[] Json(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(512);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        return buffer.WrittenSpan.ToArray();
    }

    private static void WriteSnapshot(Utf8JsonWriter w, ShadowDocument doc)
    {
        w.WriteStartObject();
        w.WriteStartObject("state");
        Property(w, "desired", doc.Desired);
        Property(w, "reported", doc.Reported);
        w.WriteEndObject();
        WriteMetadata(w, doc);
        w.WriteNumber("version", doc.Version);
        w.WriteEndObject();
    }

    private static void WriteMetadata(Utf8JsonWriter w, ShadowDocument doc)
    {
        w.WriteStartObject("metadata");
        Property(w, "desired", doc.DesiredMetadata);
        Property(w, "reported", doc.ReportedMetadata);
        w.WriteEndObject();
    }

    /// <summary>The metadata of a value set at <paramref name="at"/>, as <see cref="Metadata"/> builds it, written directly.</summary>
    private static void WriteMetadata(Utf8JsonWriter w, JsonNode? value, long at)
    {
        switch (value)
        {
            case JsonObject o:
                w.WriteStartObject();
                foreach (var (name, child) in o)
                {
                    w.WritePropertyName(name);
                    WriteMetadata(w, child, at);
                }

                w.WriteEndObject();
                break;
            case JsonArray a:
                w.WriteStartArray();
                foreach (var element in a)
                {
                    WriteMetadata(w, element, at);
                }

                w.WriteEndArray();
                break;
            default:
                w.WriteStartObject();
                w.WriteNumber("timestamp", at);
                w.WriteEndObject();
                break;
        }
    }

    /// <summary>
    /// The metadata of the fields in <paramref name="delta"/>, from the desired metadata. A field in the delta as an
    /// object means desired holds an object there, so its metadata is per field.
    /// </summary>
    private static void WriteDeltaMetadata(Utf8JsonWriter w, JsonObject delta, JsonObject? desiredMetadata)
    {
        w.WriteStartObject();
        foreach (var (name, value) in delta)
        {
            w.WritePropertyName(name);
            var meta = desiredMetadata?[name];
            if (value is JsonObject nested && meta is JsonObject nestedMeta)
            {
                WriteDeltaMetadata(w, nested, nestedMeta);
            }
            else if (meta is null)
            {
                w.WriteNullValue();
            }
            else
            {
                meta.WriteTo(w);
            }
        }

        w.WriteEndObject();
    }

    private static void Property(Utf8JsonWriter w, string name, JsonNode? value)
    {
        if (value is not null)
        {
            w.WritePropertyName(name);
            value.WriteTo(w);
        }
    }

    private static void NullableProperty(Utf8JsonWriter w, string name, JsonNode? value)
    {
        w.WritePropertyName(name);
        if (value is null)
        {
            w.WriteNullValue();
        }
        else
        {
            value.WriteTo(w);
        }
    }

    private static void Token(Utf8JsonWriter w, string? clientToken)
    {
        if (clientToken is not null)
        {
            w.WriteString("clientToken", clientToken);
        }
    }

    /// <summary>Parses JSON text that must be an object (stored documents).</summary>
    public static JsonObject? ParseStored(string? json) =>
        json is null ? null : JsonNode.Parse(json, documentOptions: ParseOptions) as JsonObject;

    /// <summary>A stored document's parts (<see cref="StoredDocument"/>'s shape), or null for a deleted shadow.</summary>
    public static StoredParts? ParseStoredParts(string? json)
    {
        if (ParseStored(json) is not { } stored)
        {
            return null;
        }

        var state = stored["state"] as JsonObject;
        var metadata = stored["metadata"] as JsonObject;
        return new StoredParts(
            state?["desired"] as JsonObject,
            state?["reported"] as JsonObject,
            metadata?["desired"] as JsonObject,
            metadata?["reported"] as JsonObject,
            stored["timestamp"]?.GetValue<long>() ?? 0);
    }

    /// <summary>What a stored shadow document holds; the objects belong to one parse (clone them to keep them apart).</summary>
    public sealed record StoredParts(JsonObject? Desired, JsonObject? Reported, JsonObject? DesiredMetadata, JsonObject? ReportedMetadata, long Timestamp);

    private static JsonObject MetadataObject(JsonObject o, long at)
    {
        var meta = new JsonObject();
        foreach (var (name, value) in o)
        {
            meta[name] = Metadata(value, at);
        }

        return meta;
    }

    /// <summary>Merges one section; a null patch removes it, a section left empty is removed too.</summary>
    private static (JsonObject? State, JsonObject? Metadata) MergeSection(JsonObject? state, JsonObject? metadata, JsonObject? patch, long now)
    {
        if (patch is null)
        {
            return (null, null);
        }

        state ??= [];
        metadata ??= [];
        MergeObject(state, metadata, patch, now);
        return state.Count == 0 ? (null, null) : (state, metadata);
    }

    private static void MergeObject(JsonObject target, JsonObject metadata, JsonObject patch, long now)
    {
        foreach (var (name, value) in patch)
        {
            switch (value)
            {
                case null:
                    target.Remove(name);
                    metadata.Remove(name);
                    break;
                case JsonObject patchObject:
                    if (target[name] is not JsonObject targetObject)
                    {
                        // A new object, or one replacing a value: its metadata starts empty (an old leaf's
                        // {"timestamp": …} must not look like a field called "timestamp").
                        targetObject = [];
                        target[name] = targetObject;
                        metadata[name] = new JsonObject();
                    }
                    else if (metadata[name] is not JsonObject)
                    {
                        metadata[name] = new JsonObject();
                    }

                    MergeObject(targetObject, (JsonObject)metadata[name]!, patchObject, now);
                    break;
                default:
                    target[name] = value.DeepClone();
                    metadata[name] = Metadata(value, now);
                    break;
            }
        }
    }

    private static ShadowError? Section(JsonNode? node, ShadowError notObject, out JsonObject? section)
    {
        section = null;
        switch (node)
        {
            case null:
                return null;
            case JsonObject o:
                section = o;
                return Check(o, 1);
            default:
                return notObject;
        }
    }

    /// <summary>Nesting depth and the no-null-in-arrays rule.</summary>
    private static ShadowError? Check(JsonNode node, int depth)
    {
        if (depth > MaxContainers)
        {
            return ShadowError.TooDeep;
        }

        switch (node)
        {
            case JsonObject o:
                foreach (var (_, child) in o)
                {
                    if (child is JsonObject or JsonArray && Check(child, depth + 1) is { } error)
                    {
                        return error;
                    }
                }

                break;
            case JsonArray a:
                foreach (var element in a)
                {
                    if (element is null)
                    {
                        return ShadowError.NullInArray;
                    }

                    if (element is JsonObject or JsonArray && Check(element, depth + 1) is { } error)
                    {
                        return error;
                    }
                }

                break;
        }

        return null;
    }

    private static ShadowError? ParseObject(ReadOnlySpan<byte> payload, out JsonObject? root)
    {
        root = null;
        if (!System.Text.Unicode.Utf8.IsValid(payload))
        {
            return ShadowError.NotUtf8;
        }

        try
        {
            if (JsonNode.Parse(payload, documentOptions: ParseOptions) is not JsonObject o)
            {
                return ShadowError.InvalidJson;
            }

            root = o;
            return null;
        }
        catch (JsonException)
        {
            // Only a refused document pays for a second look: far deeper than any valid one is "too deep".
            return Deeper(payload, ParseOptions.MaxDepth) ? ShadowError.TooDeep : ShadowError.InvalidJson;
        }
    }

    /// <summary>Whether the JSON nests deeper than <paramref name="limit"/> (the reader is not recursive; invalid JSON stops the scan).</summary>
    private static bool Deeper(ReadOnlySpan<byte> payload, int limit)
    {
        var reader = new Utf8JsonReader(payload, new JsonReaderOptions { MaxDepth = int.MaxValue });
        try
        {
            while (reader.Read())
            {
                if (reader.CurrentDepth > limit)
                {
                    return true;
                }
            }
        }
        catch (JsonException)
        {
            // Not JSON: the parse that follows says so.
        }

        return false;
    }

    private static ShadowError? ReadClientToken(JsonObject root, out string? token)
    {
        token = null;
        if (!root.TryGetPropertyValue("clientToken", out var node) || node is null)
        {
            return null;
        }

        if (node is not JsonValue v || !v.TryGetValue<string>(out var s) || System.Text.Encoding.UTF8.GetByteCount(s) > MaxClientTokenBytes)
        {
            return ShadowError.InvalidClientToken;
        }

        token = s;
        return null;
    }
}
