using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace OrleansIot.Grains.Rules.Sql;

/// <summary>AWS IoT SQL's data types (AWS IoT SQL reference, "Data types").</summary>
internal enum SqlKind
{
    /// <summary>A missing key or an invalid operation; dropped from output.</summary>
    Undefined,
    Null,
    Bool,
    Int,
    Decimal,
    String,
    Array,
    Object,
}

/// <summary>
/// One value of AWS IoT SQL. Arrays and objects are the payload's own nodes (read, never changed); output copies them.
/// Int is 64-bit, Decimal is .NET decimal (AWS: 34 digits; ours 28–29).
/// </summary>
internal readonly record struct SqlValue(SqlKind Kind, long Int, decimal Decimal, object? Ref)
{
    public static readonly SqlValue Undefined;
    public static readonly SqlValue Null = new(SqlKind.Null, 0, 0, null);
    public static readonly SqlValue True = new(SqlKind.Bool, 1, 0, null);
    public static readonly SqlValue False = new(SqlKind.Bool, 0, 0, null);

    /// <summary>JSON text as AWS writes it: compact, characters as they are.</summary>
    public static readonly JsonSerializerOptions OutputJson = new() { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public static SqlValue Of(bool b) => b ? True : False;

    public static SqlValue Of(long i) => new(SqlKind.Int, i, 0, null);

    /// <summary>A decimal; a whole number becomes Int, as SQL version 2016-03-23 does.</summary>
    public static SqlValue Of(decimal d) => d == decimal.Truncate(d) && d is >= long.MinValue and <= long.MaxValue
        ? Of((long)d)
        : new SqlValue(SqlKind.Decimal, 0, d, null);

    public static SqlValue Of(double d) =>
        double.IsNaN(d) || double.IsInfinity(d) || d > (double)decimal.MaxValue || d < (double)decimal.MinValue
            ? Undefined
            : Of((decimal)d);

    public static SqlValue Of(string? s) => s is null ? Undefined : new(SqlKind.String, 0, 0, s);

    public static SqlValue Of(JsonArray a) => new(SqlKind.Array, 0, 0, a);

    public static SqlValue Of(JsonObject o) => new(SqlKind.Object, 0, 0, o);

    public bool IsUndefined => Kind == SqlKind.Undefined;

    public bool IsNumber => Kind is SqlKind.Int or SqlKind.Decimal;

    public bool Bool => Int != 0;

    public string String => (string)Ref!;

    public JsonArray Array => (JsonArray)Ref!;

    public JsonObject Object => (JsonObject)Ref!;

    /// <summary>From a JSON node of the payload (a missing node is Undefined, JSON null is Null).</summary>
    public static SqlValue FromJson(JsonNode? node, bool present = true)
    {
        if (!present)
        {
            return Undefined;
        }

        switch (node)
        {
            case null:
                return Null;
            case JsonObject o:
                return Of(o);
            case JsonArray a:
                return Of(a);
        }

        var value = node.AsValue();
        switch (value.GetValueKind())
        {
            case JsonValueKind.String:
                return Of(value.GetValue<string>());
            case JsonValueKind.True:
                return True;
            case JsonValueKind.False:
                return False;
            case JsonValueKind.Number:
                if (value.TryGetValue<long>(out var l))
                {
                    return Of(l);
                }

                if (value.TryGetValue<decimal>(out var d))
                {
                    return Of(d);
                }

                return value.TryGetValue<double>(out var dbl) ? Of(dbl) : Undefined;
            default:
                return Null;
        }
    }

    /// <summary>To JSON for output; Undefined has none (the caller drops it).</summary>
    public JsonNode? ToJson() => Kind switch
    {
        SqlKind.Null or SqlKind.Undefined => null,
        SqlKind.Bool => JsonValue.Create(Bool),
        SqlKind.Int => JsonValue.Create(Int),
        SqlKind.Decimal => JsonValue.Create(Decimal),
        SqlKind.String => JsonValue.Create(String),
        SqlKind.Array => Array.DeepClone(),
        _ => Object.DeepClone(),
    };

    // ---- AWS's implicit conversions ----

    /// <summary>To Decimal: numbers, numeric strings; Null stays Null; anything else Undefined.</summary>
    public SqlValue AsNumber()
    {
        switch (Kind)
        {
            case SqlKind.Int or SqlKind.Decimal or SqlKind.Null:
                return this;
            case SqlKind.String when TryParseNumber(String, out var n):
                return n;
            default:
                return Undefined;
        }
    }

    public decimal ToDecimal() => Kind == SqlKind.Int ? Int : Decimal;

    /// <summary>To Boolean: Booleans, and the strings "true"/"false" in any case; anything else Undefined.</summary>
    public SqlValue AsBool() => Kind switch
    {
        SqlKind.Bool => this,
        SqlKind.String when string.Equals(String, "true", StringComparison.OrdinalIgnoreCase) => True,
        SqlKind.String when string.Equals(String, "false", StringComparison.OrdinalIgnoreCase) => False,
        _ => Undefined,
    };

    /// <summary>To String as AWS converts (arrays and objects as JSON text); Null and Undefined have none.</summary>
    public string? AsText() => Kind switch
    {
        SqlKind.String => String,
        SqlKind.Int => Int.ToString(CultureInfo.InvariantCulture),
        SqlKind.Decimal => Decimal.ToString(CultureInfo.InvariantCulture),
        SqlKind.Bool => Bool ? "true" : "false",
        SqlKind.Array or SqlKind.Object => ((JsonNode)Ref!).ToJsonString(OutputJson),
        _ => null,
    };

    /// <summary>AWS's numeric string form: <c>^-?\d+(\.\d+)?((?i)E-?\d+)?$</c>.</summary>
    public static bool TryParseNumber(string text, out SqlValue number)
    {
        number = Undefined;
        var s = text.AsSpan();
        var i = 0;
        if (i < s.Length && s[i] == '-')
        {
            i++;
        }

        var digits = i;
        while (i < s.Length && char.IsAsciiDigit(s[i]))
        {
            i++;
        }

        if (i == digits)
        {
            return false;
        }

        var isDecimal = false;
        if (i < s.Length && s[i] == '.')
        {
            isDecimal = true;
            var fraction = ++i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            if (i == fraction)
            {
                return false;
            }
        }

        if (i < s.Length && s[i] is 'e' or 'E')
        {
            isDecimal = true;
            i++;
            if (i < s.Length && s[i] == '-')
            {
                i++;
            }

            var exponent = i;
            while (i < s.Length && char.IsAsciiDigit(s[i]))
            {
                i++;
            }

            if (i == exponent)
            {
                return false;
            }
        }

        if (i != s.Length)
        {
            return false;
        }

        if (!isDecimal && long.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var l))
        {
            number = Of(l);
            return true;
        }

        if (decimal.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var d))
        {
            number = Of(d);
            return true;
        }

        if (double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var dbl))
        {
            number = Of(dbl);
            return !number.IsUndefined;
        }

        return false;
    }

    /// <summary>AWS <c>=</c>: Undefined on either side is Undefined; numbers by value; arrays in order; objects by keys; mismatched types false.</summary>
    public static SqlValue Equal(SqlValue a, SqlValue b)
    {
        if (a.IsUndefined || b.IsUndefined)
        {
            return Undefined;
        }

        return Of(Same(a, b));
    }

    public static bool Same(SqlValue a, SqlValue b)
    {
        if (a.IsNumber && b.IsNumber)
        {
            return a.ToDecimal() == b.ToDecimal();
        }

        if (a.Kind != b.Kind)
        {
            return false;
        }

        return a.Kind switch
        {
            SqlKind.Null => true,
            SqlKind.Bool => a.Bool == b.Bool,
            SqlKind.String => a.String == b.String,
            _ => JsonNode.DeepEquals((JsonNode)a.Ref!, (JsonNode)b.Ref!),
        };
    }

    public override string ToString() => Kind switch
    {
        SqlKind.Undefined => "Undefined",
        SqlKind.Null => "null",
        SqlKind.String => $"'{String}'",
        _ => AsText() ?? "",
    };
}
