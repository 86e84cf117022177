using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OrleansIot.Grains.Abstractions;

namespace OrleansIot.Grains.Provisioning;

/// <summary>
/// An AWS provisioning template: <c>Parameters</c> (with defaults), <c>Resources</c> of the types
/// <c>AWS::IoT::Thing</c> (ThingName, ThingTypeName, AttributePayload, ThingGroups), <c>AWS::IoT::Certificate</c>
/// (CertificateId, Status) and <c>AWS::IoT::Policy</c> (PolicyName or PolicyDocument), and
/// <c>DeviceConfiguration</c>; values may use <c>Ref</c>, <c>Fn::Join</c>, <c>Fn::Sub</c>, <c>Fn::Select</c> and
/// <c>Fn::Split</c>. The parameter <c>AWS::IoT::Certificate::Id</c> is the device's new certificate.
/// </summary>
internal sealed partial class ProvisioningTemplate
{
    /// <summary>AWS's limit on a template body.</summary>
    public const int MaxBodyBytes = 10 * 1024;

    public const string CertificateIdParameter = "AWS::IoT::Certificate::Id";

    private readonly JsonObject _parameters;
    private readonly JsonObject _resources;
    private readonly JsonObject? _deviceConfiguration;

    private ProvisioningTemplate(JsonObject parameters, JsonObject resources, JsonObject? deviceConfiguration)
    {
        _parameters = parameters;
        _resources = resources;
        _deviceConfiguration = deviceConfiguration;
    }

    /// <summary>A template name AWS accepts: 1 to 36 of <c>[0-9A-Za-z_-]</c>.</summary>
    public static bool IsValidName(string name) => NamePattern().IsMatch(name);

    /// <summary>Parses and checks a body; <c>InvalidRequestException</c> naming the problem.</summary>
    public static ProvisioningTemplate Parse(string body)
    {
        if (System.Text.Encoding.UTF8.GetByteCount(body) > MaxBodyBytes)
        {
            throw ApiException.Invalid($"templateBody is larger than {MaxBodyBytes} bytes.");
        }

        JsonObject root;
        try
        {
            root = JsonNode.Parse(body) as JsonObject ?? throw ApiException.Invalid("templateBody must be a JSON object.");
        }
        catch (JsonException ex)
        {
            throw ApiException.Invalid($"templateBody is not valid JSON: {ex.Message}");
        }

        var resources = root["Resources"] as JsonObject ?? throw ApiException.Invalid("templateBody needs a Resources object.");
        foreach (var (name, resource) in resources)
        {
            var type = (resource as JsonObject)?["Type"]?.GetValueKind() == JsonValueKind.String ? (string)resource!["Type"]! : null;
            if (type is not ("AWS::IoT::Thing" or "AWS::IoT::Certificate" or "AWS::IoT::Policy"))
            {
                throw ApiException.Invalid($"Resource {name} has type '{type}'; expected AWS::IoT::Thing, AWS::IoT::Certificate or AWS::IoT::Policy.");
            }
        }

        return new ProvisioningTemplate(root["Parameters"] as JsonObject ?? [], resources, root["DeviceConfiguration"] as JsonObject);
    }

    /// <summary>What the template asks for with these parameters; <c>InvalidParameters</c> (400) when one is missing.</summary>
    public Plan Evaluate(IReadOnlyDictionary<string, string> given, string certificateId)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal) { [CertificateIdParameter] = certificateId };
        foreach (var (name, declaration) in _parameters)
        {
            if (given.TryGetValue(name, out var value))
            {
                values[name] = value;
            }
            else if (declaration?["Default"] is JsonValue fallback)
            {
                values[name] = fallback.ToString();
            }
            else
            {
                throw new ApiException(400, "InvalidParameters", $"Parameter {name} has no value and no default.");
            }
        }

        ThingPlan? thing = null;
        string? status = null;
        string? policyName = null;
        string? policyDocument = null;
        foreach (var (_, node) in _resources)
        {
            var resource = (JsonObject)node!;
            var properties = resource["Properties"] as JsonObject ?? [];
            switch ((string)resource["Type"]!)
            {
                case "AWS::IoT::Thing":
                    var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
                    foreach (var (key, value) in properties["AttributePayload"] as JsonObject ?? [])
                    {
                        attributes[key] = Resolve(value, values);
                    }

                    thing = new ThingPlan(
                        Resolve(properties["ThingName"], values),
                        properties["ThingTypeName"] is { } type ? Resolve(type, values) : null,
                        attributes,
                        properties["ThingGroups"] is { } groups ? ResolveList(groups, values) : []);
                    break;
                case "AWS::IoT::Certificate":
                    status = properties["Status"] is { } s ? Resolve(s, values) : "ACTIVE";
                    break;
                default:
                    policyName = properties["PolicyName"] is { } n ? Resolve(n, values) : null;
                    policyDocument = properties["PolicyDocument"] switch
                    {
                        JsonObject document => document.ToJsonString(),
                        { } other => Resolve(other, values),
                        null => null,
                    };
                    break;
            }
        }

        var configuration = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in _deviceConfiguration ?? [])
        {
            configuration[key] = Resolve(value, values);
        }

        return new Plan(thing, status, policyName, policyDocument, configuration);
    }

    private static string Resolve(JsonNode? node, Dictionary<string, string> values)
    {
        switch (node)
        {
            case JsonValue value:
                return value.GetValueKind() == JsonValueKind.String ? (string)value! : value.ToJsonString();
            case JsonObject { Count: 1 } function:
                var (name, argument) = function.First();
                switch (name)
                {
                    case "Ref":
                        var parameter = Resolve(argument, values);
                        return values.TryGetValue(parameter, out var found) ? found : throw new ApiException(400, "InvalidParameters", $"Ref to unknown parameter {parameter}.");
                    case "Fn::Join" when argument is JsonArray { Count: 2 } join:
                        return string.Join(Resolve(join[0], values), ResolveList(join[1], values));
                    case "Fn::Select" when argument is JsonArray { Count: 2 } select
                                           && int.TryParse(Resolve(select[0], values), System.Globalization.CultureInfo.InvariantCulture, out var index):
                        var items = ResolveList(select[1], values);
                        return index >= 0 && index < items.Count ? items[index] : throw new ApiException(400, "InvalidParameters", $"Fn::Select index {index} is outside the list.");
                    case "Fn::Sub":
                        return SubPattern().Replace(Resolve(argument, values), m =>
                            values.TryGetValue(m.Groups[1].Value, out var v) ? v : throw new ApiException(400, "InvalidParameters", $"Fn::Sub refers to unknown parameter {m.Groups[1].Value}."));
                }

                break;
        }

        throw new ApiException(400, "InvalidParameters", $"Cannot evaluate {node?.ToJsonString() ?? "null"}.");
    }

    private static List<string> ResolveList(JsonNode? node, Dictionary<string, string> values) => node switch
    {
        JsonArray array => [.. array.Select(item => Resolve(item, values))],
        JsonObject { Count: 1 } split when split["Fn::Split"] is JsonArray { Count: 2 } arguments =>
            [.. Resolve(arguments[1], values).Split(Resolve(arguments[0], values))],
        _ => [Resolve(node, values)],
    };

    [GeneratedRegex("^[0-9A-Za-z_-]{1,36}$")]
    private static partial Regex NamePattern();

    [GeneratedRegex(@"\$\{([^}]+)\}")]
    private static partial Regex SubPattern();

    /// <summary>The thing the template makes.</summary>
    public sealed record ThingPlan(string Name, string? TypeName, IReadOnlyDictionary<string, string> Attributes, IReadOnlyList<string> Groups);

    /// <summary>Everything a RegisterThing does.</summary>
    public sealed record Plan(ThingPlan? Thing, string? CertificateStatus, string? PolicyName, string? PolicyDocument, IReadOnlyDictionary<string, string> DeviceConfiguration);
}
