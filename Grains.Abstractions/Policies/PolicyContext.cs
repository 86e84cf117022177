namespace OrleansIot.Grains.Abstractions.Policies;

/// <summary>
/// What a request's policy variables and condition keys resolve to: the connection's client id and source address,
/// the thing named by the client id (when the registry has it), and the client certificate's fields. Keys are AWS's
/// (<c>iot:ClientId</c>, <c>iot:Connection.Thing.ThingName</c>, <c>iot:Connection.Thing.Attributes[color]</c>,
/// <c>iot:Certificate.Subject.CommonName</c>, <c>aws:SourceIp</c> …).
/// </summary>
public sealed class PolicyContext
{
    /// <summary>Longest value AWS substitutes.</summary>
    public const int MaxSubstitutedLength = 1024;

    /// <summary>The MQTT client id.</summary>
    public string? ClientId { get; init; }

    /// <summary>The client's address (<c>aws:SourceIp</c>).</summary>
    public string? SourceIp { get; init; }

    /// <summary>The thing whose name is the client id, when the registry has it.</summary>
    public string? ThingName { get; init; }

    /// <summary>Its thing type.</summary>
    public string? ThingTypeName { get; init; }

    /// <summary>Its attributes.</summary>
    public IReadOnlyDictionary<string, string> ThingAttributes { get; init; } = new Dictionary<string, string>();

    /// <summary>Whether the connecting identity (certificate) is attached to that thing.</summary>
    public bool? IsAttached { get; init; }

    /// <summary>
    /// The client certificate's fields by name after <c>iot:Certificate.</c>: <c>Subject.CommonName</c>,
    /// <c>Issuer.Organization</c>, <c>SerialNumber</c>, <c>Subject.AlternativeName.DNSName</c> … (each may have several values).
    /// </summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Certificate { get; init; } = new Dictionary<string, IReadOnlyList<string>>();

    /// <summary><c>iot:ConnectAttributes</c>: <c>PersistentConnect</c>, <c>LastWill</c>.</summary>
    public IReadOnlyList<string> ConnectAttributes { get; init; } = [];

    /// <summary>The time of the request (<c>aws:CurrentTime</c>, <c>aws:EpochTime</c>).</summary>
    public required DateTimeOffset Now { get; init; }

    /// <summary>The same request at another time.</summary>
    public PolicyContext At(DateTimeOffset now) => new()
    {
        ClientId = ClientId,
        SourceIp = SourceIp,
        ThingName = ThingName,
        ThingTypeName = ThingTypeName,
        ThingAttributes = ThingAttributes,
        IsAttached = IsAttached,
        Certificate = Certificate,
        ConnectAttributes = ConnectAttributes,
        Now = now,
    };

    /// <summary>
    /// A variable's text for substitution, or null when it is not substituted (unknown, missing, longer than 1024
    /// characters, or holding one of <c>* $ + ? #</c>: AWS leaves the variable as written, which then matches nothing).
    /// </summary>
    public string? Substitute(string name)
    {
        var values = Values(name);
        if (values is null || values.Count == 0 || name.EndsWith(".List", StringComparison.Ordinal))
        {
            return null;
        }

        var value = values[0];
        return value.Length > MaxSubstitutedLength || value.AsSpan().IndexOfAny("*$+?#") >= 0 ? null : value;
    }

    /// <summary>The values of a condition key or variable; null when the request has none.</summary>
    public IReadOnlyList<string>? Values(string key)
    {
        const string Thing = "iot:Connection.Thing.";
        const string Cert = "iot:Certificate.";
        switch (key)
        {
            case "iot:ClientId":
                return One(ClientId);
            case "aws:SourceIp":
                return One(SourceIp);
            case "iot:ConnectAttributes":
                return ConnectAttributes.Count == 0 ? null : ConnectAttributes;
            case "aws:CurrentTime":
                return [Now.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", System.Globalization.CultureInfo.InvariantCulture)];
            case "aws:EpochTime":
                return [Now.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture)];
            case Thing + "ThingName":
                return One(ThingName);
            case Thing + "ThingTypeName":
                return One(ThingTypeName);
            case Thing + "IsAttached":
                return IsAttached is { } attached ? [attached ? "true" : "false"] : null;
        }

        if (key.StartsWith(Thing + "Attributes[", StringComparison.Ordinal) && key.EndsWith(']'))
        {
            var attribute = key[(Thing.Length + "Attributes[".Length)..^1];
            return ThingAttributes.TryGetValue(attribute, out var value) ? [value] : null;
        }

        if (key.StartsWith(Cert, StringComparison.Ordinal))
        {
            var field = key[Cert.Length..];
            if (field.EndsWith(".List", StringComparison.Ordinal))
            {
                return Certificate.TryGetValue(field[..^".List".Length], out var all) ? [.. all.Take(5)] : null;
            }

            // ".1" is the second value (AWS counts from 0 after the first, which has no index).
            var dot = field.LastIndexOf('.');
            if (dot > 0 && int.TryParse(field.AsSpan(dot + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var index))
            {
                return Certificate.TryGetValue(field[..dot], out var indexed) && index < Math.Min(indexed.Count, 5) ? [indexed[index]] : null;
            }

            return Certificate.TryGetValue(field, out var values) && values.Count > 0 ? [values[0]] : null;
        }

        return null;
    }

    private static string[]? One(string? value) => value is null ? null : [value];
}
