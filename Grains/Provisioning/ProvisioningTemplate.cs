using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Certificates;
using OrleansIot.Grains.Certificates;

namespace OrleansIot.Grains.Provisioning;

/// <summary>
/// An AWS provisioning template, for fleet provisioning (RegisterThing) and just-in-time provisioning: <c>Parameters</c>
/// (with defaults), <c>Mappings</c>, <c>Resources</c> of the types <c>AWS::IoT::Thing</c> (ThingName, ThingTypeName,
/// AttributePayload, ThingGroups), <c>AWS::IoT::Certificate</c> (CertificateId, Status) and <c>AWS::IoT::Policy</c>
/// (PolicyName or PolicyDocument; one or more), each with its <c>OverrideSettings</c>, and <c>DeviceConfiguration</c>;
/// values may use <c>Ref</c>, <c>Fn::Join</c>, <c>Fn::Sub</c>, <c>Fn::Select</c>, <c>Fn::Split</c> and
/// <c>Fn::FindInMap</c>.
/// <para>
/// The built-in parameters (<c>AWS::IoT::Certificate::Id</c>, and from the certificate's subject <c>CommonName</c>,
/// <c>Country</c>, <c>SerialNumber</c> …) are filled by the platform whether or not the template declares them, as
/// AWS's own examples expect (they declare <c>AWS::IoT::Certificate::Id</c> and never pass it). A declared built-in
/// the certificate has no value for fails the provisioning, as on AWS. <c>BillingGroup</c> is accepted and ignored:
/// there are no billing groups here.
/// </para>
/// </summary>
internal sealed partial class ProvisioningTemplate
{
    /// <summary>AWS's limit on a template body.</summary>
    public const int MaxBodyBytes = 10 * 1024;

    public const string BuiltInPrefix = "AWS::IoT::Certificate::";
    public const string CertificateIdParameter = BuiltInPrefix + "Id";

    /// <summary>The built-in parameters: the certificate's id, and the subject fields of its certificate (JITP).</summary>
    public static readonly IReadOnlySet<string> BuiltIns = new HashSet<string>(StringComparer.Ordinal)
    {
        CertificateIdParameter,
        BuiltInPrefix + "Country",
        BuiltInPrefix + "Organization",
        BuiltInPrefix + "OrganizationalUnit",
        BuiltInPrefix + "DistinguishedNameQualifier",
        BuiltInPrefix + "StateName",
        BuiltInPrefix + "CommonName",
        BuiltInPrefix + "SerialNumber",
    };

    private readonly JsonObject _parameters;
    private readonly JsonObject _mappings;
    private readonly JsonObject _resources;
    private readonly JsonObject? _deviceConfiguration;

    private ProvisioningTemplate(JsonObject parameters, JsonObject mappings, JsonObject resources, JsonObject? deviceConfiguration)
    {
        _parameters = parameters;
        _mappings = mappings;
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

        var parameters = root["Parameters"] as JsonObject ?? [];
        foreach (var (name, _) in parameters)
        {
            if (name.StartsWith("AWS::", StringComparison.Ordinal) && !BuiltIns.Contains(name))
            {
                throw ApiException.Invalid($"Parameter {name} is not a built-in parameter; those are {string.Join(", ", BuiltIns.Order(StringComparer.Ordinal))}.");
            }
        }

        var mappings = root["Mappings"] as JsonObject ?? [];
        var resources = root["Resources"] as JsonObject ?? throw ApiException.Invalid("templateBody needs a Resources object.");
        var things = 0;
        foreach (var (name, node) in resources)
        {
            var resource = node as JsonObject ?? throw ApiException.Invalid($"Resource {name} must be an object.");
            var type = resource["Type"]?.GetValueKind() == JsonValueKind.String ? (string)resource["Type"]! : null;
            var allowed = type switch
            {
                "AWS::IoT::Thing" => ThingOverrideKeys,
                "AWS::IoT::Certificate" => CertificateOverrideKeys,
                "AWS::IoT::Policy" => [],
                _ => throw ApiException.Invalid($"Resource {name} has type '{type}'; expected AWS::IoT::Thing, AWS::IoT::Certificate or AWS::IoT::Policy."),
            };
            things += type == "AWS::IoT::Thing" ? 1 : 0;
            foreach (var (key, value) in resource["OverrideSettings"] as JsonObject ?? [])
            {
                if (OverrideKey(key) is not { } known || !allowed.Contains(known))
                {
                    throw ApiException.Invalid($"Resource {name} has an OverrideSettings key '{key}' its type does not take.");
                }

                if (Override(value) is not { } setting || (setting == OverrideSetting.Merge && known is not ("AttributePayload" or "ThingGroups")))
                {
                    throw ApiException.Invalid($"Resource {name}: OverrideSettings {key} is '{value?.ToJsonString()}'; expected DO_NOTHING, REPLACE, FAIL or (for AttributePayload and ThingGroups) MERGE.");
                }
            }
        }

        if (things > 1)
        {
            throw ApiException.Invalid("A template provisions at most one thing.");
        }

        return new ProvisioningTemplate(parameters, mappings, resources, root["DeviceConfiguration"] as JsonObject);
    }

    /// <summary>
    /// What the template asks for, with the device's <paramref name="given"/> parameters and the platform's
    /// <paramref name="builtIns"/> (which the device cannot override); <c>InvalidParameters</c> (400) when a value is missing.
    /// </summary>
    public Plan Evaluate(IReadOnlyDictionary<string, string> given, IReadOnlyDictionary<string, string> builtIns)
    {
        var values = new Dictionary<string, string>(builtIns, StringComparer.Ordinal);
        foreach (var (name, declaration) in _parameters)
        {
            if (BuiltIns.Contains(name))
            {
                if (!values.ContainsKey(name))
                {
                    throw new ApiException(400, "InvalidParameters", $"Parameter {name} has no value: the certificate's subject has no such field.");
                }
            }
            else if (given.TryGetValue(name, out var value))
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
        var policies = new List<PolicyPlan>();
        foreach (var (_, node) in _resources)
        {
            var resource = (JsonObject)node!;
            var properties = resource["Properties"] as JsonObject ?? [];
            var overrides = new Dictionary<string, OverrideSetting>(StringComparer.Ordinal);
            foreach (var (key, value) in resource["OverrideSettings"] as JsonObject ?? [])
            {
                overrides[OverrideKey(key)!] = Override(value)!.Value;
            }

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
                        properties["AttributePayload"] is null ? null : attributes,
                        properties["ThingGroups"] is { } groups ? ResolveList(groups, values) : null,
                        overrides.GetValueOrDefault("AttributePayload"),
                        overrides.GetValueOrDefault("ThingTypeName"),
                        overrides.GetValueOrDefault("ThingGroups"));
                    break;
                case "AWS::IoT::Certificate":
                    if (properties["CertificateId"] is { } id && Resolve(id, values) != values.GetValueOrDefault(CertificateIdParameter))
                    {
                        throw new ApiException(400, "InvalidParameters", "The certificate resource must be the device's own certificate ({\"Ref\": \"AWS::IoT::Certificate::Id\"}).");
                    }

                    // AWS's own examples write "Active": the status is not case-sensitive here.
                    status = (properties["Status"] is { } s ? Resolve(s, values) : CertificateStatus.Active).ToUpperInvariant();
                    if (status is not (CertificateStatus.Active or CertificateStatus.Inactive))
                    {
                        throw new ApiException(400, "InvalidParameters", $"The certificate's Status is '{status}'; expected ACTIVE or INACTIVE.");
                    }

                    break;
                default:
                    var policyName = properties["PolicyName"] is { } n ? Resolve(n, values) : null;
                    var policyDocument = properties["PolicyDocument"] switch
                    {
                        JsonObject document => document.ToJsonString(),
                        { } other => Resolve(other, values),
                        null => null,
                    };
                    if ((policyName is null) == (policyDocument is null))
                    {
                        throw new ApiException(400, "InvalidParameters", "A policy resource takes PolicyName or PolicyDocument, one of them.");
                    }

                    policies.Add(new PolicyPlan(policyName, policyDocument));
                    break;
            }
        }

        var configuration = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (key, value) in _deviceConfiguration ?? [])
        {
            configuration[key] = Resolve(value, values);
        }

        return new Plan(thing, status, policies, configuration);
    }

    /// <summary>
    /// The built-in parameters of a certificate: its id, and the subject fields JITP reads (those the subject has).
    /// </summary>
    public static Dictionary<string, string> BuiltInsOf(System.Security.Cryptography.X509Certificates.X509Certificate2 certificate)
    {
        ArgumentNullException.ThrowIfNull(certificate);
        var values = new Dictionary<string, string>(StringComparer.Ordinal) { [CertificateIdParameter] = CertificateIds.Of(certificate) };
        foreach (var name in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            var field = name.GetSingleElementType().Value switch
            {
                "2.5.4.6" => "Country",
                "2.5.4.10" => "Organization",
                "2.5.4.11" => "OrganizationalUnit",
                "2.5.4.46" => "DistinguishedNameQualifier",
                "2.5.4.8" => "StateName",
                "2.5.4.3" => "CommonName",
                "2.5.4.5" => "SerialNumber",
                _ => null,
            };
            if (field is not null && name.GetSingleElementValue() is { } value)
            {
                values.TryAdd(BuiltInPrefix + field, value);
            }
        }

        return values;
    }

    private static readonly string[] ThingOverrideKeys = ["AttributePayload", "ThingTypeName", "ThingGroups"];
    private static readonly string[] CertificateOverrideKeys = ["Status"];

    /// <summary>An override key in either of AWS's spellings (<c>AttributePayload</c> or <c>ATTRIBUTE_PAYLOAD</c>).</summary>
    private static string? OverrideKey(string key) => key switch
    {
        "AttributePayload" or "ATTRIBUTE_PAYLOAD" => "AttributePayload",
        "ThingTypeName" or "THING_TYPE_NAME" => "ThingTypeName",
        "ThingGroups" or "THING_GROUPS" => "ThingGroups",
        "Status" or "STATUS" => "Status",
        _ => null,
    };

    private static OverrideSetting? Override(JsonNode? value) =>
        value is JsonValue v && v.GetValueKind() == JsonValueKind.String
            ? ((string)v!) switch
            {
                "DO_NOTHING" => OverrideSetting.DoNothing,
                "REPLACE" => OverrideSetting.Replace,
                "FAIL" => OverrideSetting.Fail,
                "MERGE" => OverrideSetting.Merge,
                _ => null,
            }
            : null;

    private string Resolve(JsonNode? node, Dictionary<string, string> values)
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
                    case "Fn::FindInMap" when argument is JsonArray { Count: 3 } find:
                        var (map, top, second) = (Resolve(find[0], values), Resolve(find[1], values), Resolve(find[2], values));
                        return (_mappings[map] as JsonObject)?[top] is JsonObject entry && entry[second] is JsonValue found2
                            ? (found2.GetValueKind() == JsonValueKind.String ? (string)found2! : found2.ToJsonString())
                            : throw new ApiException(400, "InvalidParameters", $"Fn::FindInMap: mapping {map} has no {top}.{second}.");
                }

                break;
        }

        throw new ApiException(400, "InvalidParameters", $"Cannot evaluate {node?.ToJsonString() ?? "null"}.");
    }

    private List<string> ResolveList(JsonNode? node, Dictionary<string, string> values) => node switch
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

    /// <summary>What to do with a property of a resource that exists already (AWS's <c>OverrideSettings</c>).</summary>
    public enum OverrideSetting
    {
        /// <summary>Not given: the platform's default for that property.</summary>
        Unspecified,
        DoNothing,
        Replace,
        Merge,
        Fail,
    }

    /// <summary>The thing the template makes; <c>null</c> attributes or groups: the template does not set them.</summary>
    public sealed record ThingPlan(
        string Name,
        string? TypeName,
        IReadOnlyDictionary<string, string>? Attributes,
        IReadOnlyList<string>? Groups,
        OverrideSetting AttributesOverride,
        OverrideSetting TypeOverride,
        OverrideSetting GroupsOverride);

    /// <summary>A policy to attach: an existing one by name, or a document (made under a name derived from it).</summary>
    public sealed record PolicyPlan(string? Name, string? Document);

    /// <summary>Everything a RegisterThing does.</summary>
    public sealed record Plan(ThingPlan? Thing, string? CertificateStatus, IReadOnlyList<PolicyPlan> Policies, IReadOnlyDictionary<string, string> DeviceConfiguration);
}
