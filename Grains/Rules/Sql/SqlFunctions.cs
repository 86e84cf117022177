using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;

namespace OrleansIot.Grains.Rules.Sql;

/// <summary>
/// AWS IoT SQL functions (AWS IoT SQL reference, "Functions"). Names are case-insensitive; the arity is checked
/// when the rule is parsed; invalid arguments give Undefined at run time, as AWS.
/// </summary>
internal static class SqlFunctions
{
    private delegate SqlValue Function(SqlValue[] args, SqlScope scope);

    private sealed record Definition(int Min, int Max, Function Body);

    private static readonly TimeSpan RegexTimeout = TimeSpan.FromMilliseconds(100);

    private static readonly Dictionary<string, Definition> All = new(StringComparer.OrdinalIgnoreCase)
    {
        // context
        ["topic"] = new(0, 1, (a, s) => Topic(s.Context.Topic, a)),
        ["clientid"] = new(0, 0, (_, s) => SqlValue.Of(s.Context.ClientId ?? "n/a")),
        ["principal"] = new(0, 0, (_, s) => SqlValue.Of(s.Context.Principal)),
        ["accountid"] = new(0, 0, (_, s) => SqlValue.Of(s.Context.AccountId)),
        ["timestamp"] = new(0, 0, (_, s) => SqlValue.Of(s.Context.TimestampMs)),
        ["newuuid"] = new(0, 0, (_, _) => SqlValue.Of(Guid.NewGuid().ToString())),
        ["traceid"] = new(0, 0, (_, s) => SqlValue.Of(s.Context.TraceId)),
        ["sql_version"] = new(0, 0, (_, _) => SqlValue.Of("2016-03-23")),
        ["rand"] = new(0, 0, (_, _) => SqlValue.Of(Random.Shared.NextDouble())),
        // get_thing_shadow(thingName, roleArn) / (thingName, shadowName, roleArn): the role is accepted and not used
        ["get_thing_shadow"] = new(2, 3, (a, s) => Text(a[0]) is { } thing && (a.Length == 2 ? "" : Text(a[1])) is { } shadow
            ? s.Context.Shadow(thing, shadow)
            : SqlValue.Undefined),
        // type and null
        ["isnull"] = new(1, 1, (a, _) => SqlValue.Of(a[0].Kind == SqlKind.Null)),
        ["isundefined"] = new(1, 1, (a, _) => SqlValue.Of(a[0].IsUndefined)),
        ["nanvl"] = new(2, 2, (a, _) => a[0].Kind is SqlKind.Undefined or SqlKind.Null ? a[1] : a[0]),
        // strings and collections
        ["get"] = new(2, 2, (a, _) => Get(a[0], a[1])),
        ["concat"] = new(0, int.MaxValue, (a, _) => Concat(a)),
        ["length"] = new(1, 1, (a, _) => Text(a[0]) is { } t ? SqlValue.Of((long)new StringInfo(t).LengthInTextElements) : SqlValue.Undefined),
        ["numbytes"] = new(1, 1, (a, _) => Text(a[0]) is { } t ? SqlValue.Of((long)Encoding.UTF8.GetByteCount(t)) : SqlValue.Undefined),
        ["lower"] = new(1, 1, (a, _) => SqlValue.Of(Text(a[0])?.ToLowerInvariant())),
        ["upper"] = new(1, 1, (a, _) => SqlValue.Of(Text(a[0])?.ToUpperInvariant())),
        ["trim"] = new(1, 1, (a, _) => SqlValue.Of(Text(a[0])?.Trim(' ', '\t'))),
        ["ltrim"] = new(1, 1, (a, _) => SqlValue.Of(Text(a[0])?.TrimStart(' ', '\t'))),
        ["rtrim"] = new(1, 1, (a, _) => SqlValue.Of(Text(a[0])?.TrimEnd(' ', '\t'))),
        ["lpad"] = new(2, 2, (a, _) => Pad(a, left: true)),
        ["rpad"] = new(2, 2, (a, _) => Pad(a, left: false)),
        ["substring"] = new(2, 3, (a, _) => Substring(a)),
        ["indexof"] = new(2, 2, (a, _) => Text(a[0]) is { } t && Text(a[1]) is { } sub ? SqlValue.Of((long)t.IndexOf(sub, StringComparison.Ordinal)) : SqlValue.Undefined),
        ["startswith"] = new(2, 2, (a, _) => Text(a[0]) is { } t && Text(a[1]) is { } p ? SqlValue.Of(t.StartsWith(p, StringComparison.Ordinal)) : SqlValue.Undefined),
        ["endswith"] = new(2, 2, (a, _) => Text(a[0]) is { } t && Text(a[1]) is { } p ? SqlValue.Of(t.EndsWith(p, StringComparison.Ordinal)) : SqlValue.Undefined),
        ["replace"] = new(3, 3, (a, _) => Text(a[0]) is { } t && Text(a[1]) is { Length: > 0 } f && Text(a[2]) is { } r ? SqlValue.Of(t.Replace(f, r, StringComparison.Ordinal)) : SqlValue.Undefined),
        ["regexp_matches"] = new(2, 2, (a, _) => Regex(a[1]) is { } re && Text(a[0]) is { } t ? Safe(() => SqlValue.Of(re.IsMatch(t))) : SqlValue.Undefined),
        ["regexp_replace"] = new(3, 3, (a, _) => Regex(a[1]) is { } re && Text(a[0]) is { } t && Text(a[2]) is { } r ? Safe(() => SqlValue.Of(re.Replace(t, r))) : SqlValue.Undefined),
        ["regexp_substr"] = new(2, 2, (a, _) => Regex(a[1]) is { } re && Text(a[0]) is { } t ? Safe(() => re.Match(t) is { Success: true } m ? SqlValue.Of(m.Value) : SqlValue.Of("")) : SqlValue.Undefined),
        ["chr"] = new(1, 1, (a, _) => Whole(a[0]) is { } n and >= 0 and < 128 ? SqlValue.Of(((char)n).ToString()) : SqlValue.Undefined),
        // math
        ["abs"] = new(1, 1, (a, _) => Num(a[0], d => Math.Abs(d))),
        ["ceil"] = new(1, 1, (a, _) => Num(a[0], decimal.Ceiling)),
        ["floor"] = new(1, 1, (a, _) => Num(a[0], decimal.Floor)),
        ["round"] = new(1, 1, (a, _) => Num(a[0], d => decimal.Round(d, MidpointRounding.AwayFromZero))),
        ["trunc"] = new(2, 2, (a, _) => Whole(a[1]) is { } places ? Num(a[0], d => decimal.Truncate(d * Pow10(Math.Clamp(places, 0, 28))) / Pow10(Math.Clamp(places, 0, 28))) : SqlValue.Undefined),
        ["mod"] = new(2, 2, (a, _) => SqlArithmetic.Apply('%', a[0], a[1])),
        ["remainder"] = new(2, 2, (a, _) => SqlArithmetic.Apply('%', a[0], a[1])),
        ["sign"] = new(1, 1, (a, _) => a[0].AsNumber() is { IsNumber: true } n ? SqlValue.Of((long)Math.Sign(n.ToDecimal())) : SqlValue.Undefined),
        ["power"] = new(2, 2, (a, _) => Dbl2(a, Math.Pow)),
        ["sqrt"] = new(1, 1, (a, _) => Dbl(a[0], Math.Sqrt)),
        ["exp"] = new(1, 1, (a, _) => Dbl(a[0], Math.Exp)),
        ["ln"] = new(1, 1, (a, _) => Dbl(a[0], Math.Log)),
        ["log"] = new(1, 1, (a, _) => Dbl(a[0], Math.Log10)),
        ["sin"] = new(1, 1, (a, _) => Dbl(a[0], Math.Sin)),
        ["cos"] = new(1, 1, (a, _) => Dbl(a[0], Math.Cos)),
        ["tan"] = new(1, 1, (a, _) => Dbl(a[0], Math.Tan)),
        ["asin"] = new(1, 1, (a, _) => Dbl(a[0], Math.Asin)),
        ["acos"] = new(1, 1, (a, _) => Dbl(a[0], Math.Acos)),
        ["atan"] = new(1, 1, (a, _) => Dbl(a[0], Math.Atan)),
        ["atan2"] = new(2, 2, (a, _) => Dbl2(a, Math.Atan2)),
        ["sinh"] = new(1, 1, (a, _) => Dbl(a[0], Math.Sinh)),
        ["cosh"] = new(1, 1, (a, _) => Dbl(a[0], Math.Cosh)),
        ["tanh"] = new(1, 1, (a, _) => Dbl(a[0], Math.Tanh)),
        ["bitand"] = new(2, 2, (a, _) => Bits(a, (x, y) => x & y)),
        ["bitor"] = new(2, 2, (a, _) => Bits(a, (x, y) => x | y)),
        ["bitxor"] = new(2, 2, (a, _) => Bits(a, (x, y) => x ^ y)),
        ["bitnot"] = new(1, 1, (a, _) => Whole(a[0]) is { } x ? SqlValue.Of(~x) : SqlValue.Undefined),
        // hashes (hex of the UTF-8 text)
        ["md5"] = new(1, 1, (a, _) => Hash(a[0], MD5.HashData)),
        ["sha1"] = new(1, 1, (a, _) => Hash(a[0], SHA1.HashData)),
        ["sha256"] = new(1, 1, (a, _) => Hash(a[0], SHA256.HashData)),
        ["sha384"] = new(1, 1, (a, _) => Hash(a[0], SHA384.HashData)),
        ["sha512"] = new(1, 1, (a, _) => Hash(a[0], SHA512.HashData)),
        // encoding (encode(*, 'base64') is handled at parse time: it needs the raw payload)
        ["encode"] = new(2, 2, (a, _) => IsBase64(a[1]) && Text(a[0]) is { } t ? SqlValue.Of(Convert.ToBase64String(Encoding.UTF8.GetBytes(t))) : SqlValue.Undefined),
        ["decode"] = new(2, 2, (a, _) => Decode(a)),
        // time
        ["parse_time"] = new(2, 3, (a, _) => SqlTime.Format(a)),
        ["time_to_epoch"] = new(2, 2, (a, _) => SqlTime.Parse(a)),
        // objects
        ["transform"] = new(3, 3, (a, _) => Transform(a)),
    };

    /// <summary>
    /// <c>transform("enrichArray", object, array)</c>: each element of the array (objects only) with the object's
    /// attributes added; other modes or types give Undefined.
    /// </summary>
    private static SqlValue Transform(SqlValue[] a)
    {
        if (a[0].AsText() is not { } mode || !string.Equals(mode, "enrichArray", StringComparison.OrdinalIgnoreCase)
            || a[1].Kind != SqlKind.Object || a[2].Kind != SqlKind.Array)
        {
            return SqlValue.Undefined;
        }

        var result = new JsonArray();
        foreach (var element in a[2].Array)
        {
            if (element is not JsonObject item)
            {
                continue;
            }

            var merged = (JsonObject)item.DeepClone();
            foreach (var (name, value) in a[1].Object)
            {
                merged[name] = value?.DeepClone();
            }

            result.Add(merged);
        }

        return SqlValue.Of(result);
    }

    /// <summary>Parses the arguments of a call (after its '(') and compiles it.</summary>
    public static SqlExpr Call(SqlParser parser, string name, int position)
    {
        if (string.Equals(name, "cast", StringComparison.OrdinalIgnoreCase))
        {
            return Cast(parser);
        }

        var args = new List<SqlExpr>();
        if (!parser.Accept(")"))
        {
            do
            {
                args.Add(parser.Expression());
            }
            while (parser.Accept(","));
            parser.Expect(")");
        }

        if (!All.TryGetValue(name, out var function))
        {
            throw new SqlSyntaxException(position, $"unknown function '{name}'");
        }

        if (args.Count < function.Min || args.Count > function.Max)
        {
            var expected = function.Min == function.Max ? $"{function.Min}" : function.Max == int.MaxValue ? $"at least {function.Min}" : $"{function.Min} to {function.Max}";
            throw new SqlSyntaxException(position, $"function '{name}' takes {expected} argument(s), not {args.Count}");
        }

        var key = name.ToLowerInvariant();
        if (key == "encode" && args[0].IsStar)
        {
            // encode(*, 'base64'): the payload's bytes as they arrived, JSON or not.
            var format = args[1];
            return new SqlExpr(s => IsBase64(format.Eval(s)) ? SqlValue.Of(Convert.ToBase64String(s.Context.Payload)) : SqlValue.Undefined, key);
        }

        var compiled = args.ToArray();
        var body = function.Body;
        return new SqlExpr(
            s =>
            {
                var values = new SqlValue[compiled.Length];
                for (var i = 0; i < compiled.Length; i++)
                {
                    values[i] = compiled[i].Eval(s);
                }

                return body(values, s);
            },
            key);
    }

    /// <summary><c>cast(value AS Type)</c>: String (and its synonyms), Int/Integer, Decimal/Double, Bool/Boolean.</summary>
    private static SqlExpr Cast(SqlParser parser)
    {
        var value = parser.Expression();
        parser.Expect("AS");
        var type = parser.ExpectIdentifier("a type after AS").ToLowerInvariant();
        parser.Expect(")");
        Func<SqlValue, SqlValue> convert = type switch
        {
            "string" or "nvarchar" or "text" or "ntext" or "varchar" => v => SqlValue.Of(v.AsText()),
            "int" or "integer" => CastInt,
            "decimal" or "double" => v => v.Kind == SqlKind.Bool ? SqlValue.Of(v.Bool ? 1L : 0L) : v.AsNumber() is { IsNumber: true } n ? n : SqlValue.Undefined,
            "bool" or "boolean" => v => v.IsNumber ? SqlValue.Of(v.ToDecimal() != 0) : v.AsBool(),
            _ => throw new SqlSyntaxException(0, $"unknown type '{type}' in cast"),
        };
        return new SqlExpr(s => convert(value.Eval(s)), "cast");
    }

    private static SqlValue CastInt(SqlValue v)
    {
        if (v.Kind == SqlKind.Bool)
        {
            return SqlValue.Of(v.Bool ? 1L : 0L);
        }

        return v.AsNumber() is { IsNumber: true } n ? SqlValue.Of((long)decimal.Floor(n.ToDecimal())) : SqlValue.Undefined;
    }

    private static SqlValue Topic(string topic, SqlValue[] a)
    {
        // Basic Ingest: the $aws/rules/{rule}/ prefix is not part of the topic rules see.
        if (topic.StartsWith("$aws/rules/", StringComparison.Ordinal))
        {
            var rest = topic.IndexOf('/', "$aws/rules/".Length);
            topic = rest < 0 ? "" : topic[(rest + 1)..];
        }

        if (a.Length == 0)
        {
            return SqlValue.Of(topic);
        }

        if (Whole(a[0]) is not { } n || n < 1)
        {
            return SqlValue.Undefined;
        }

        var levels = topic.Split('/');
        return n <= levels.Length ? SqlValue.Of(levels[n - 1]) : SqlValue.Undefined;
    }

    private static SqlValue Get(SqlValue collection, SqlValue key)
    {
        switch (collection.Kind)
        {
            case SqlKind.Object when key.AsText() is { } name:
                return collection.Object.TryGetPropertyValue(name, out var node) ? SqlValue.FromJson(node) : SqlValue.Undefined;
            case SqlKind.Array when Whole(key) is { } i:
                return i >= 0 && i < collection.Array.Count ? SqlValue.FromJson(collection.Array[(int)i]) : SqlValue.Undefined;
            case SqlKind.String when Whole(key) is { } i:
                return i >= 0 && i < collection.String.Length ? SqlValue.Of(collection.String[(int)i].ToString()) : SqlValue.Undefined;
            default:
                return SqlValue.Undefined;
        }
    }

    private static SqlValue Concat(SqlValue[] a)
    {
        if (a.Length == 0)
        {
            return SqlValue.Undefined;
        }

        if (a.Length == 1)
        {
            return a[0];
        }

        if (a.Any(v => v.Kind == SqlKind.Array))
        {
            var result = new JsonArray();
            foreach (var v in a)
            {
                if (v.Kind == SqlKind.Array)
                {
                    foreach (var item in v.Array)
                    {
                        result.Add(item?.DeepClone());
                    }
                }
                else if (!v.IsUndefined)
                {
                    result.Add(v.ToJson());
                }
            }

            return SqlValue.Of(result);
        }

        var text = new StringBuilder();
        foreach (var v in a)
        {
            if (v.AsText() is not { } t)
            {
                return SqlValue.Undefined;
            }

            text.Append(t);
        }

        return SqlValue.Of(text.ToString());
    }

    private static SqlValue Pad(SqlValue[] a, bool left)
    {
        if (Text(a[0]) is not { } t || Whole(a[1]) is not { } n)
        {
            return SqlValue.Undefined;
        }

        var width = (int)Math.Clamp(n, 0, 1000);
        var padding = new string(' ', width);
        return SqlValue.Of(left ? padding + t : t + padding);
    }

    private static SqlValue Substring(SqlValue[] a)
    {
        if (Text(a[0]) is not { } t || Whole(a[1]) is not { } start)
        {
            return SqlValue.Undefined;
        }

        var end = a.Length == 3 ? Whole(a[2]) : t.Length;
        if (end is null)
        {
            return SqlValue.Undefined;
        }

        var from = (int)Math.Clamp(start, 0, t.Length);
        var to = (int)Math.Clamp(end.Value, 0, t.Length);
        return SqlValue.Of(to <= from ? "" : t[from..to]);
    }

    private static SqlValue Decode(SqlValue[] a)
    {
        if (!IsBase64(a[1]) || a[0].Kind != SqlKind.String)
        {
            return SqlValue.Undefined;
        }

        try
        {
            var text = Encoding.UTF8.GetString(Convert.FromBase64String(a[0].String));
            if (SqlValue.TryParseNumber(text.Trim(), out var number))
            {
                return number;
            }

            try
            {
                if (JsonNode.Parse(text) is JsonObject o)
                {
                    return SqlValue.Of(o);
                }
            }
            catch (System.Text.Json.JsonException)
            {
            }

            return SqlValue.Of(text);
        }
        catch (FormatException)
        {
            return SqlValue.Null;
        }
    }

    private static bool IsBase64(SqlValue format) => format.Kind == SqlKind.String && string.Equals(format.String, "base64", StringComparison.OrdinalIgnoreCase);

    private static SqlValue Hash(SqlValue v, Func<byte[], byte[]> hash) =>
        Text(v) is { } t ? SqlValue.Of(Convert.ToHexStringLower(hash(Encoding.UTF8.GetBytes(t)))) : SqlValue.Undefined;

    /// <summary>Strings as they are, other values as AWS converts them to text; Null and Undefined have none.</summary>
    private static string? Text(SqlValue v) => v.AsText();

    /// <summary>A whole number (decimals floored, numeric strings accepted).</summary>
    private static long? Whole(SqlValue v) => v.AsNumber() is { IsNumber: true } n ? (long)decimal.Floor(n.ToDecimal()) : null;

    private static SqlValue Num(SqlValue v, Func<decimal, decimal> f) => v.AsNumber() is { IsNumber: true } n ? SqlValue.Of(f(n.ToDecimal())) : SqlValue.Undefined;

    private static SqlValue Dbl(SqlValue v, Func<double, double> f) => v.AsNumber() is { IsNumber: true } n ? SqlValue.Of(f((double)n.ToDecimal())) : SqlValue.Undefined;

    private static SqlValue Dbl2(SqlValue[] a, Func<double, double, double> f) =>
        a[0].AsNumber() is { IsNumber: true } x && a[1].AsNumber() is { IsNumber: true } y ? SqlValue.Of(f((double)x.ToDecimal(), (double)y.ToDecimal())) : SqlValue.Undefined;

    private static SqlValue Bits(SqlValue[] a, Func<long, long, long> f) => Whole(a[0]) is { } x && Whole(a[1]) is { } y ? SqlValue.Of(f(x, y)) : SqlValue.Undefined;

    private static decimal Pow10(long places)
    {
        var p = 1m;
        for (var i = 0; i < places; i++)
        {
            p *= 10;
        }

        return p;
    }

    private static System.Text.RegularExpressions.Regex? Regex(SqlValue pattern)
    {
        if (pattern.Kind != SqlKind.String)
        {
            return null;
        }

        try
        {
            // Bounded: a pattern from a rule never stalls the pipeline (catastrophic backtracking times out → Undefined).
            return new System.Text.RegularExpressions.Regex(pattern.String, RegexOptions.CultureInvariant, RegexTimeout);
        }
        catch (ArgumentException)
        {
            return null;
        }
    }

    private static SqlValue Safe(Func<SqlValue> run)
    {
        try
        {
            return run();
        }
        catch (RegexMatchTimeoutException)
        {
            return SqlValue.Undefined;
        }
    }
}
