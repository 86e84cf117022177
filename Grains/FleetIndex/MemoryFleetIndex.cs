using System.Text.RegularExpressions;
using OrleansIot.Grains.Abstractions.FleetIndex;
using OrleansIot.Grains.Abstractions.Registry;
using OrleansIot.Grains.Registry;

namespace OrleansIot.Grains.FleetIndex;

/// <summary>A thing's entry in memory: each part's document and fields.</summary>
public sealed class IndexedThing(string thingName)
{
    public string ThingName { get; } = thingName;

    public (string Document, Dictionary<string, FieldValue[]> Fields)?[] Parts { get; } = new (string, Dictionary<string, FieldValue[]>)?[3];

    public bool Registered => Parts[(int)IndexPart.Registry] is not null;

    public FieldValue[]? Values(IndexPart part, string field) =>
        Parts[(int)part] is { } p && p.Fields.TryGetValue(field, out var values) ? values : null;
}

/// <summary>
/// The thing index in memory: the embedded default's store (held by one grain) and the reference the SQL translation
/// is tested against. Evaluates the query tree over each entry's fields. Not thread-safe: its grain calls it one turn
/// at a time.
/// </summary>
public sealed class MemoryFleetIndex
{
    private readonly SortedDictionary<string, IndexedThing> _things = new(StringComparer.Ordinal);

    public int Count => _things.Count;

    public void Write(string thingName, IndexPart part, IndexSection? section)
    {
        if (!_things.TryGetValue(thingName, out var thing))
        {
            if (section is null)
            {
                return;
            }

            thing = new IndexedThing(thingName);
            _things[thingName] = thing;
        }

        thing.Parts[(int)part] = section is null ? null : (section.Document, IndexFields.Parse(section.Fields));
        if (thing.Parts.All(p => p is null))
        {
            _things.Remove(thingName);
        }
    }

    /// <summary>Writes a part of a thing that has a registry part; false (nothing written) for any other.</summary>
    public bool WriteIfRegistered(string thingName, IndexPart part, IndexSection section)
    {
        if (!_things.TryGetValue(thingName, out var thing) || thing.Parts[(int)IndexPart.Registry] is null)
        {
            return false;
        }

        thing.Parts[(int)part] = (section.Document, IndexFields.Parse(section.Fields));
        return true;
    }

    public void Remove(string thingName) => _things.Remove(thingName);

    public IndexSearchPage Search(FleetQuery query, string? after, int maxResults)
    {
        var page = Matching(query)
            .Where(t => after is null || string.CompareOrdinal(t.ThingName, after) > 0)
            .Take(maxResults + 1)
            .ToList();
        string? next = null;
        if (page.Count > maxResults)
        {
            page.RemoveAt(maxResults);
            next = RegistryPaging.Token(page[^1].ThingName);
        }

        return new IndexSearchPage([.. page.Select(Document)], next);
    }

    public FleetStatistics Statistics(FleetQuery query, string field) => FleetAggregates.Statistics(Values(query, field));

    public long Cardinality(FleetQuery query, string field) => Values(query, field).Select(v => v.Text).Distinct(StringComparer.Ordinal).LongCount();

    public IReadOnlyList<FleetPercentile> Percentiles(FleetQuery query, string field, IReadOnlyList<double> percents) =>
        FleetAggregates.Percentiles(Values(query, field), percents);

    public IReadOnlyList<FleetBucket> Buckets(FleetQuery query, string field, int maxBuckets) =>
        [.. Values(query, field).GroupBy(v => v.Text, StringComparer.Ordinal)
            .Select(g => new FleetBucket(g.Key, g.LongCount()))
            .OrderByDescending(b => b.Count).ThenBy(b => b.KeyValue, StringComparer.Ordinal)
            .Take(maxBuckets)];

    public RegistryPage<string> Names(string? after, int maxResults) =>
        RegistryPaging.Page(_things.Keys.Where(n => after is null || string.CompareOrdinal(n, after) > 0), maxResults, n => n);

    private IEnumerable<IndexedThing> Matching(FleetQuery query) => _things.Values.Where(t => t.Registered && Matches(query.Root, t));

    private IEnumerable<FieldValue> Values(FleetQuery query, string field)
    {
        var part = IndexFieldNames.PartOf(field) ?? IndexPart.Registry;
        return Matching(query).SelectMany(t => t.Values(part, field) ?? []);
    }

    private static IndexedThingDocument Document(IndexedThing t) =>
        new(t.ThingName, t.Parts[0]!.Value.Document, t.Parts[1]?.Document, t.Parts[2]?.Document);

    /// <summary>Whether the entry matches the query (the semantics <see cref="FleetQuerySql"/> translates).</summary>
    public static bool Matches(QueryNode node, IndexedThing thing) => node switch
    {
        AllNode => true,
        AndNode and => and.Items.All(i => Matches(i, thing)),
        OrNode or => or.Items.Any(i => Matches(i, thing)),
        NotNode not => !Matches(not.Item, thing),
        TermNode term => Candidates(term.Field, thing).Any(c => Term(term, c.Values, c.Present)),
        RangeNode range => Candidates(range.Field, thing).Any(c => c.Values.Any(v => InRange(range, v))),
        _ => false,
    };

    private static IEnumerable<(FieldValue[] Values, bool Present)> Candidates(string? field, IndexedThing thing)
    {
        if (field is null)
        {
            yield return (thing.Values(IndexPart.Registry, IndexFields.AllValues) ?? [], true);
            yield return (thing.Values(IndexPart.Shadow, IndexFields.AllValues) ?? [], true);
            yield break;
        }

        var values = thing.Values(IndexFieldNames.PartOf(field) ?? IndexPart.Registry, field);
        yield return (values ?? [], values is not null);
    }

    private static bool Term(TermNode term, FieldValue[] values, bool present)
    {
        switch (term.Kind)
        {
            case TermKind.Exists:
                return present;
            case TermKind.Wildcard:
                var like = Like(term.Text);
                return values.Any(v => like.IsMatch(v.Text));
            default:
                var number = term.Number;
                return values.Any(v => v.Kind switch
                {
                    FieldKind.Text => v.Text == term.Text,
                    FieldKind.Number => number == v.Number,
                    _ => v.Text == term.Text,
                });
        }
    }

    private static bool InRange(RangeNode range, FieldValue value)
    {
        if (range.Numeric)
        {
            if (!value.TryNumeric(out var n))
            {
                return false;
            }

            return (range.Low is not { } lo || (lo.Inclusive ? n >= lo.Number : n > lo.Number))
                && (range.High is not { } hi || (hi.Inclusive ? n <= hi.Number : n < hi.Number));
        }

        if (value.Kind != FieldKind.Text)
        {
            return false;
        }

        return (range.Low is not { } l || (l.Inclusive ? string.CompareOrdinal(value.Text, l.Text) >= 0 : string.CompareOrdinal(value.Text, l.Text) > 0))
            && (range.High is not { } h || (h.Inclusive ? string.CompareOrdinal(value.Text, h.Text) <= 0 : string.CompareOrdinal(value.Text, h.Text) < 0));
    }

    private static readonly Dictionary<string, Regex> LikeCache = [];

    /// <summary>A SQL LIKE pattern (backslash escapes) as a regular expression over the whole value.</summary>
    private static Regex Like(string pattern)
    {
        lock (LikeCache)
        {
            if (LikeCache.TryGetValue(pattern, out var cached))
            {
                return cached;
            }

            var regex = new System.Text.StringBuilder("^");
            for (var i = 0; i < pattern.Length; i++)
            {
                var c = pattern[i];
                if (c == '\\' && i + 1 < pattern.Length)
                {
                    regex.Append(Regex.Escape(pattern[++i].ToString()));
                }
                else
                {
                    regex.Append(c switch { '%' => ".*", '_' => ".", _ => Regex.Escape(c.ToString()) });
                }
            }

            var compiled = new Regex(regex.Append('$').ToString(), RegexOptions.Singleline | RegexOptions.CultureInvariant);
            if (LikeCache.Count > 1000)
            {
                LikeCache.Clear();
            }

            LikeCache[pattern] = compiled;
            return compiled;
        }
    }
}

/// <summary>The aggregations' arithmetic, as PostgreSQL does it (population variance, <c>percentile_cont</c>).</summary>
public static class FleetAggregates
{
    public static FleetStatistics Statistics(IEnumerable<FieldValue> values)
    {
        long count = 0, numeric = 0;
        double sum = 0, squares = 0, min = double.MaxValue, max = double.MinValue;
        foreach (var v in values)
        {
            count++;
            if (!Numeric(v, out var n))
            {
                continue;
            }

            numeric++;
            sum += n;
            squares += n * n;
            min = Math.Min(min, n);
            max = Math.Max(max, n);
        }

        if (numeric == 0)
        {
            return new FleetStatistics(count, null, null, null, null, null, null, null);
        }

        var average = sum / numeric;
        var variance = Math.Max(0, (squares / numeric) - (average * average));
        return new FleetStatistics(numeric, average, sum, min, max, squares, variance, Math.Sqrt(variance));
    }

    /// <summary>Numbers, numeric text and booleans (1 or 0) aggregate as numbers (<see cref="FleetQuerySql.NumberOf"/>).</summary>
    public static bool Numeric(FieldValue value, out double number)
    {
        number = value.Number;
        return value.Kind == FieldKind.Boolean || value.TryNumeric(out number);
    }

    public static IReadOnlyList<FleetPercentile> Percentiles(IEnumerable<FieldValue> values, IReadOnlyList<double> percents)
    {
        var sorted = values.Select(v => Numeric(v, out var n) ? n : double.NaN).Where(n => !double.IsNaN(n)).Order().ToArray();
        if (sorted.Length == 0)
        {
            return [];
        }

        return [.. percents.Select(p =>
        {
            var position = p / 100 * (sorted.Length - 1);
            var below = (int)Math.Floor(position);
            var above = Math.Min(below + 1, sorted.Length - 1);
            return new FleetPercentile(p, sorted[below] + ((position - below) * (sorted[above] - sorted[below])));
        })];
    }
}
