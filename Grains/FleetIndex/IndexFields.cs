using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;

namespace OrleansIot.Grains.FleetIndex;

public enum FieldKind : byte
{
    Text,
    Number,
    Boolean,
}

/// <summary>
/// One indexed value. Strings are kept in lower case (search is case-insensitive); <see cref="Text"/> is the value as
/// text the way PostgreSQL prints a jsonb scalar (so wildcards and cardinality agree between the stores).
/// </summary>
public readonly record struct FieldValue(FieldKind Kind, string Text, double Number)
{
    public static FieldValue Of(string text) => new(FieldKind.Text, text.ToLowerInvariant(), 0);

    public static FieldValue Of(double number) => new(FieldKind.Number, number.ToString("R", CultureInfo.InvariantCulture), number);

    public static FieldValue Of(bool value) => new(FieldKind.Boolean, value ? "true" : "false", value ? 1 : 0);

    /// <summary>As a range compares it: a number, or numeric text.</summary>
    public bool TryNumeric(out double value)
    {
        value = Number;
        return Kind == FieldKind.Number || (Kind == FieldKind.Text && FleetValue.TryNumericText(Text, out value));
    }
}

/// <summary>
/// Builds a thing's index sections from its sources of truth. A section is its document (returned by searches)
/// and its fields: every searchable path with its values, arrays flattened (an array matches on any element),
/// every object's path present (for <c>field:*</c>), and under the key <c>""</c> the values an unqualified term
/// searches. Both stores read the same fields, so they answer a query the same way.
/// </summary>
public static class IndexFields
{
    public const string AllValues = "";

    public static IndexSection Registry(ThingRecord thing, IReadOnlyList<string> groups)
    {
        var fields = new Fields();
        fields.Add("thingName", FieldValue.Of(thing.ThingName), all: true);
        fields.Add("thingId", FieldValue.Of(thing.ThingId), all: true);
        if (thing.ThingTypeName is { } type)
        {
            fields.Add("thingTypeName", FieldValue.Of(type), all: true);
        }

        foreach (var group in groups)
        {
            fields.Add("thingGroupNames", FieldValue.Of(group), all: true);
        }

        foreach (var (name, value) in thing.Attributes)
        {
            fields.Add("attributes." + name, FieldValue.Of(value), all: true);
        }

        fields.Add("registry.version", FieldValue.Of(thing.Version), all: false);
        var document = Write(w =>
        {
            w.WriteString("thingName", thing.ThingName);
            w.WriteString("thingId", thing.ThingId);
            if (thing.ThingTypeName is { } t)
            {
                w.WriteString("thingTypeName", t);
            }

            w.WriteStartArray("thingGroupNames");
            foreach (var group in groups)
            {
                w.WriteStringValue(group);
            }

            w.WriteEndArray();
            w.WriteStartObject("attributes");
            foreach (var (name, value) in thing.Attributes)
            {
                w.WriteString(name, value);
            }

            w.WriteEndObject();
            w.WriteNumber("version", thing.Version);
        });
        return new IndexSection(document, fields.ToJson());
    }

    /// <summary>
    /// The shadow section: the classic shadow at <c>shadow.*</c> and each named shadow at <c>shadow.name.{name}.*</c>,
    /// as AWS's thing document shows them (reported, desired, delta, hasDelta, version, metadata).
    /// </summary>
    public static IndexSection? Shadows(IndexedShadow? classic, IReadOnlyList<(string Name, IndexedShadow Shadow)> named)
    {
        if (classic is null && named.Count == 0)
        {
            return null;
        }

        var fields = new Fields();
        var root = new JsonObject();
        if (classic is not null)
        {
            AddShadow(fields, "shadow", classic, root);
        }

        if (named.Count > 0)
        {
            var names = new JsonObject();
            foreach (var (name, shadow) in named)
            {
                var one = new JsonObject();
                AddShadow(fields, "shadow.name." + name, shadow, one);
                names[name] = one;
            }

            root["name"] = names;
        }

        fields.Ensure("shadow");
        return new IndexSection(root.ToJsonString(), fields.ToJson());
    }

    /// <summary>The shadow section from stored rows (<see cref="OrleansIot.Grains.Shadows.IShadowStore"/>): the classic one (name "") and named ones.</summary>
    public static IndexSection? ShadowsFromStored(IReadOnlyList<OrleansIot.Grains.Shadows.StoredShadow> rows)
    {
        IndexedShadow? classic = null;
        var named = new List<(string, IndexedShadow)>();
        foreach (var row in rows.OrderBy(r => r.ShadowName, StringComparer.Ordinal))
        {
            if (OrleansIot.Grains.Shadows.ShadowMerge.ParseStoredParts(row.Document) is not { } stored)
            {
                continue;
            }

            var shadow = new IndexedShadow(stored.Desired, stored.Reported, stored.DesiredMetadata, stored.ReportedMetadata, row.Version);
            if (row.ShadowName.Length == 0)
            {
                classic = shadow;
            }
            else
            {
                named.Add((row.ShadowName, shadow));
            }
        }

        return Shadows(classic, named);
    }

    public static IndexSection Connectivity(bool connected, long timestampMs, string? disconnectReason)
    {
        var fields = new Fields();
        fields.Add("connectivity.connected", FieldValue.Of(connected), all: false);
        fields.Add("connectivity.timestamp", FieldValue.Of(timestampMs), all: false);
        if (disconnectReason is not null)
        {
            fields.Add("connectivity.disconnectReason", FieldValue.Of(disconnectReason), all: false);
        }

        var document = Write(w =>
        {
            w.WriteBoolean("connected", connected);
            w.WriteNumber("timestamp", timestampMs);
            if (disconnectReason is not null)
            {
                w.WriteString("disconnectReason", disconnectReason);
            }
        });
        return new IndexSection(document, fields.ToJson());
    }

    private static void AddShadow(Fields fields, string prefix, IndexedShadow shadow, JsonObject target)
    {
        var delta = OrleansIot.Grains.Shadows.ShadowMerge.Delta(shadow.Desired, shadow.Reported);
        Put(fields, prefix + ".reported", shadow.Reported, target, "reported", all: true);
        Put(fields, prefix + ".desired", shadow.Desired, target, "desired", all: true);
        Put(fields, prefix + ".delta", delta, target, "delta", all: false);
        var metadata = new JsonObject();
        if (shadow.DesiredMetadata is not null)
        {
            metadata["desired"] = shadow.DesiredMetadata.DeepClone();
        }

        if (shadow.ReportedMetadata is not null)
        {
            metadata["reported"] = shadow.ReportedMetadata.DeepClone();
        }

        Put(fields, prefix + ".metadata", metadata, target, "metadata", all: false);
        target["version"] = shadow.Version;
        target["hasDelta"] = delta is { Count: > 0 };
        fields.Add(prefix + ".version", FieldValue.Of(shadow.Version), all: false);
        fields.Add(prefix + ".hasDelta", FieldValue.Of(delta is { Count: > 0 }), all: false);
    }

    private static void Put(Fields fields, string path, JsonObject? value, JsonObject target, string name, bool all)
    {
        if (value is null)
        {
            return;
        }

        target[name] = value.DeepClone();
        Flatten(fields, path, value, all);
    }

    private static void Flatten(Fields fields, string path, JsonNode? node, bool all)
    {
        switch (node)
        {
            case JsonObject obj:
                fields.Ensure(path);
                foreach (var (key, child) in obj)
                {
                    Flatten(fields, path + "." + key, child, all);
                }

                break;
            case JsonArray array:
                fields.Ensure(path);
                foreach (var item in array)
                {
                    Flatten(fields, path, item, all);
                }

                break;
            case JsonValue value:
                switch (value.GetValueKind())
                {
                    case JsonValueKind.String:
                        fields.Add(path, FieldValue.Of(value.GetValue<string>()), all);
                        break;
                    case JsonValueKind.Number when value.TryGetValue<double>(out var d) || double.TryParse(value.ToJsonString(), NumberStyles.Float, CultureInfo.InvariantCulture, out d):
                        if (double.IsFinite(d))
                        {
                            fields.Add(path, FieldValue.Of(d), all);
                        }

                        break;
                    case JsonValueKind.True:
                        fields.Add(path, FieldValue.Of(true), all);
                        break;
                    case JsonValueKind.False:
                        fields.Add(path, FieldValue.Of(false), all);
                        break;
                }

                break;
        }
    }

    private static string Write(Action<Utf8JsonWriter> body)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            writer.WriteStartObject();
            body(writer);
            writer.WriteEndObject();
        }

        return Encoding.UTF8.GetString(buffer.WrittenSpan);
    }

    /// <summary>Reads fields written by <see cref="Fields.ToJson"/>.</summary>
    public static Dictionary<string, FieldValue[]> Parse(string json)
    {
        var result = new Dictionary<string, FieldValue[]>(StringComparer.Ordinal);
        using var doc = JsonDocument.Parse(json);
        foreach (var property in doc.RootElement.EnumerateObject())
        {
            var values = new FieldValue[property.Value.GetArrayLength()];
            var i = 0;
            foreach (var item in property.Value.EnumerateArray())
            {
                values[i++] = item.ValueKind switch
                {
                    JsonValueKind.String => new FieldValue(FieldKind.Text, item.GetString()!, 0),
                    JsonValueKind.Number => FieldValue.Of(item.GetDouble()),
                    _ => FieldValue.Of(item.ValueKind == JsonValueKind.True),
                };
            }

            result[property.Name] = values;
        }

        return result;
    }

    private sealed class Fields
    {
        private readonly Dictionary<string, List<FieldValue>> _paths = new(StringComparer.Ordinal);

        public void Ensure(string path)
        {
            if (!_paths.ContainsKey(path))
            {
                _paths[path] = [];
            }
        }

        public void Add(string path, FieldValue value, bool all)
        {
            if (!_paths.TryGetValue(path, out var values))
            {
                values = [];
                _paths[path] = values;
            }

            values.Add(value);
            if (all)
            {
                Add(AllValues, value, all: false);
            }
        }

        public string ToJson() => Write(w =>
        {
            foreach (var (path, values) in _paths)
            {
                w.WriteStartArray(path);
                foreach (var value in values)
                {
                    switch (value.Kind)
                    {
                        case FieldKind.Text: w.WriteStringValue(value.Text); break;
                        case FieldKind.Number: w.WriteNumberValue(value.Number); break;
                        default: w.WriteBooleanValue(value.Number != 0); break;
                    }
                }

                w.WriteEndArray();
            }
        });
    }
}

/// <summary>A shadow as the index sees it.</summary>
public sealed record IndexedShadow(JsonObject? Desired, JsonObject? Reported, JsonObject? DesiredMetadata, JsonObject? ReportedMetadata, long Version);
