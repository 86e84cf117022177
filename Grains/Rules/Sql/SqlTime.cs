using System.Globalization;
using System.Text;

namespace OrleansIot.Grains.Rules.Sql;

/// <summary>
/// <c>parse_time(pattern, epochMs[, timeZone])</c> and <c>time_to_epoch(text, pattern)</c>. AWS takes Joda-Time / Java
/// DateTimeFormatter patterns; the common letters are translated to .NET's (y M d H h m s S a E Z X, quoted text).
/// Time zones are IANA names or UTC offsets; the default is UTC.
/// </summary>
internal static class SqlTime
{
    public static SqlValue Format(SqlValue[] a)
    {
        if (a[0].AsText() is not { } pattern || a[1].AsNumber() is not { IsNumber: true } epoch || Translate(pattern) is not { } format)
        {
            return SqlValue.Undefined;
        }

        var zone = a.Length == 3 ? Zone(a[2].AsText()) : TimeZoneInfo.Utc;
        if (zone is null)
        {
            return SqlValue.Undefined;
        }

        try
        {
            var utc = DateTimeOffset.FromUnixTimeMilliseconds((long)decimal.Floor(epoch.ToDecimal()));
            var local = TimeZoneInfo.ConvertTime(utc, zone);
            return SqlValue.Of(local.ToString(format, CultureInfo.InvariantCulture));
        }
        catch (ArgumentOutOfRangeException)
        {
            return SqlValue.Undefined;
        }
        catch (FormatException)
        {
            return SqlValue.Undefined;
        }
    }

    public static SqlValue Parse(SqlValue[] a)
    {
        if (a[0].AsText() is not { } text || a[1].AsText() is not { } pattern || Translate(pattern) is not { } format)
        {
            return SqlValue.Undefined;
        }

        var hasZone = format.Contains('z', StringComparison.Ordinal) || format.Contains('K', StringComparison.Ordinal);
        var styles = hasZone ? DateTimeStyles.AdjustToUniversal : DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal;
        return DateTimeOffset.TryParseExact(text, format, CultureInfo.InvariantCulture, styles, out var parsed)
            ? SqlValue.Of(parsed.ToUnixTimeMilliseconds())
            : SqlValue.Undefined;
    }

    /// <summary>A Joda/Java pattern as a .NET custom format; null for letters we do not translate.</summary>
    internal static string? Translate(string pattern)
    {
        var format = new StringBuilder();
        var i = 0;
        while (i < pattern.Length)
        {
            var c = pattern[i];
            if (c == '\'')
            {
                var end = pattern.IndexOf('\'', i + 1);
                if (end < 0)
                {
                    return null;
                }

                format.Append('"').Append(pattern, i + 1, end - i - 1).Append('"');
                i = end + 1;
                continue;
            }

            if (!char.IsAsciiLetter(c))
            {
                format.Append(c is '"' or '\\' or '%' or ':' or '/' ? "\\" + c : c.ToString());
                i++;
                continue;
            }

            var run = 1;
            while (i + run < pattern.Length && pattern[i + run] == c)
            {
                run++;
            }

            string? token = c switch
            {
                'y' or 'u' => run == 2 ? "yy" : "yyyy",
                'M' => new string('M', Math.Min(run, 4)),
                'd' => run >= 2 ? "dd" : "d",
                'H' => run >= 2 ? "HH" : "H",
                'h' => run >= 2 ? "hh" : "h",
                'm' => run >= 2 ? "mm" : "m",
                's' => run >= 2 ? "ss" : "s",
                'S' => new string('f', Math.Min(run, 7)),
                'a' => "tt",
                'E' => run >= 4 ? "dddd" : "ddd",
                'Z' or 'X' or 'x' => run >= 2 ? "zzz" : "zzz",
                _ => null,
            };
            if (token is null)
            {
                return null;
            }

            format.Append(token);
            i += run;
        }

        return format.ToString();
    }

    private static TimeZoneInfo? Zone(string? name)
    {
        if (name is null)
        {
            return null;
        }

        if (string.Equals(name, "UTC", StringComparison.OrdinalIgnoreCase) || string.Equals(name, "Z", StringComparison.Ordinal))
        {
            return TimeZoneInfo.Utc;
        }

        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(name);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            return TimeSpan.TryParse(name.TrimStart('+'), CultureInfo.InvariantCulture, out var offset)
                ? TimeZoneInfo.CreateCustomTimeZone(name, name.StartsWith('-') ? -offset.Duration() : offset, name, name)
                : null;
        }
    }
}
