namespace OrleansIot.Grains.Abstractions.Routing;

/// <summary>MQTT topic and topic filter rules (MQTT 3.1.1 §4.7, MQTT 5 §4.7), shared by the gateway and grains.</summary>
public static class TopicFilter
{
    /// <summary>A topic a client may publish to: non-empty, no wildcards, no NUL.</summary>
    public static bool IsValidTopic(string topic) =>
        !string.IsNullOrEmpty(topic) && topic.AsSpan().IndexOfAny('+', '#', '\0') < 0;

    /// <summary>The prefix of a shared subscription: <c>$share/{ShareName}/{TopicFilter}</c> (MQTT 5 §4.8.2, AWS for 3.1.1 too).</summary>
    public const string SharePrefix = "$share/";

    /// <summary>Whether a subscription filter is a shared subscription (<c>$share/...</c>).</summary>
    public static bool IsShared(string filter) => filter.StartsWith(SharePrefix, StringComparison.Ordinal);

    /// <summary>
    /// Splits a shared subscription into its share name and topic filter; false when the filter is not one. Its
    /// validity (non-empty share name without '/', '+', '#'; valid filter) is <see cref="IsValidShared"/>.
    /// </summary>
    public static bool TryParseShared(string filter, out string shareName, out string topicFilter)
    {
        ArgumentNullException.ThrowIfNull(filter);
        shareName = topicFilter = "";
        if (!IsShared(filter))
        {
            return false;
        }

        var rest = filter.AsSpan(SharePrefix.Length);
        var slash = rest.IndexOf('/');
        if (slash < 0)
        {
            shareName = rest.ToString();
            return true;
        }

        shareName = rest[..slash].ToString();
        topicFilter = rest[(slash + 1)..].ToString();
        return true;
    }

    /// <summary>Whether a <c>$share/...</c> filter is well formed.</summary>
    public static bool IsValidShared(string filter) =>
        TryParseShared(filter, out var share, out var topicFilter)
        && share.Length > 0 && share.AsSpan().IndexOfAny('/', '+', '#') < 0 && IsValidFilter(topicFilter);

    /// <summary>The filter a subscription matches topics with: the topic filter of a shared one, else itself.</summary>
    public static string MatchingFilter(string filter) => TryParseShared(filter, out _, out var topicFilter) ? topicFilter : filter;

    /// <summary>A filter a client may subscribe to: '#' only alone as the last level, '+' only as a whole level.</summary>
    public static bool IsValidFilter(string filter)
    {
        if (string.IsNullOrEmpty(filter) || filter.Contains('\0', StringComparison.Ordinal))
        {
            return false;
        }

        var levels = filter.Split('/');
        for (var i = 0; i < levels.Length; i++)
        {
            var level = levels[i];
            if (level.Contains('#', StringComparison.Ordinal) && (level != "#" || i != levels.Length - 1))
            {
                return false;
            }

            if (level.Contains('+', StringComparison.Ordinal) && level != "+")
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// Whether a topic matches a filter. A filter whose first level is a wildcard does not match topics that start
    /// with '$' (the platform's topics); "a/#" matches "a" itself.
    /// </summary>
    public static bool Matches(string filter, string topic)
    {
        ArgumentNullException.ThrowIfNull(filter);
        ArgumentNullException.ThrowIfNull(topic);
        if (topic.StartsWith('$') && (filter.StartsWith('+') || filter.StartsWith('#')))
        {
            return false;
        }

        var f = filter.AsSpan();
        var t = topic.AsSpan();
        while (true)
        {
            var fEnd = f.IndexOf('/');
            var fLevel = fEnd < 0 ? f : f[..fEnd];
            if (fLevel is "#")
            {
                return true;
            }

            var tEnd = t.IndexOf('/');
            var tLevel = tEnd < 0 ? t : t[..tEnd];
            if (fLevel is not "+" && !fLevel.SequenceEqual(tLevel))
            {
                return false;
            }

            if (fEnd < 0 || tEnd < 0)
            {
                // Both end here: match. Topic ends, filter continues: only a trailing "/#" still matches.
                return fEnd < 0 && tEnd < 0 || (tEnd < 0 && f[(fEnd + 1)..] is "#");
            }

            f = f[(fEnd + 1)..];
            t = t[(tEnd + 1)..];
        }
    }
}
