namespace OrleansIot.Grains.Rules.Sql;

/// <summary>AWS's arithmetic operators (AWS IoT SQL reference, "Operators").</summary>
internal static class SqlArithmetic
{
    /// <summary><c>+</c>: a string on either side concatenates (the other converted); otherwise numeric.</summary>
    public static SqlValue Add(SqlValue a, SqlValue b)
    {
        if (a.Kind == SqlKind.String || b.Kind == SqlKind.String)
        {
            return a.AsText() is { } l && b.AsText() is { } r ? SqlValue.Of(l + r) : SqlValue.Undefined;
        }

        return Apply('+', a, b);
    }

    /// <summary><c>+ - * / %</c> on numbers and numeric strings: Int with Int stays Int (integer division), else Decimal.</summary>
    public static SqlValue Apply(char op, SqlValue a, SqlValue b)
    {
        var x = a.AsNumber();
        var y = b.AsNumber();
        if (!x.IsNumber || !y.IsNumber)
        {
            return x.Kind == SqlKind.Null || y.Kind == SqlKind.Null ? SqlValue.Null : SqlValue.Undefined;
        }

        try
        {
            if (x.Kind == SqlKind.Int && y.Kind == SqlKind.Int)
            {
                checked
                {
                    return op switch
                    {
                        '+' => SqlValue.Of(x.Int + y.Int),
                        '-' => SqlValue.Of(x.Int - y.Int),
                        '*' => SqlValue.Of(x.Int * y.Int),
                        '/' => y.Int == 0 ? SqlValue.Undefined : SqlValue.Of(x.Int / y.Int),
                        _ => y.Int == 0 ? SqlValue.Undefined : SqlValue.Of(x.Int % y.Int),
                    };
                }
            }

            var (p, q) = (x.ToDecimal(), y.ToDecimal());
            return op switch
            {
                '+' => SqlValue.Of(p + q),
                '-' => SqlValue.Of(p - q),
                '*' => SqlValue.Of(p * q),
                '/' => q == 0 ? SqlValue.Undefined : SqlValue.Of(p / q),
                _ => q == 0 ? SqlValue.Undefined : SqlValue.Of(p % q),
            };
        }
        catch (OverflowException)
        {
            return SqlValue.Undefined;
        }
    }
}
