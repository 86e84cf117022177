using System.Globalization;

namespace OrleansIot.Bench;

/// <summary><c>--name value</c> pairs of a command.</summary>
internal sealed class BenchArgs
{
    private readonly Dictionary<string, string> _values = new(StringComparer.OrdinalIgnoreCase);

    public BenchArgs(string[] args)
    {
        for (var i = 0; i + 1 < args.Length; i += 2)
        {
            _values[args[i].TrimStart('-')] = args[i + 1];
        }
    }

    public bool Has(string name) => _values.ContainsKey(name);

    public string Get(string name, string fallback) => _values.TryGetValue(name, out var v) ? v : fallback;

    public int Int(string name, int fallback) => int.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    public double Double(string name, double fallback) => double.Parse(Get(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

    /// <summary>The value at quantile <paramref name="q"/> of sorted values.</summary>
    public static double Quantile(IReadOnlyList<double> sorted, double q) => sorted.Count == 0 ? double.NaN : sorted[Math.Min(sorted.Count - 1, (int)(q * sorted.Count))];
}
