namespace OrleansIot.Tests.Infrastructure;

/// <summary>Unique names per test (client ids, topics, things), so tests share fixtures without resetting them.</summary>
public static class Ids
{
    /// <summary><paramref name="prefix"/>, a dash and <paramref name="randomChars"/> hex characters.</summary>
    public static string NewId(string prefix, int randomChars = 12) => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 1 + randomChars)];
}
