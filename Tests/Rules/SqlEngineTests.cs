using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Rules.Sql;

namespace OrleansIot.Tests.Rules;

/// <summary>
/// The AWS IoT SQL engine alone (version 2016-03-23), table-driven: operators with AWS's type and Undefined rules,
/// functions with the examples of AWS's SQL reference, SELECT shapes, WHERE, nested SELECT, non-JSON payloads and
/// parse errors with positions.
/// </summary>
[Trait("Category", "Unit")]
public sealed class SqlEngineTests
{
    private const string Payload = """
        {"temperature":21.5,"humidity":40,"name":"dev1","ok":true,"nothing":null,"tags":["a","b","c"],
         "nested":{"level":{"deep":7}},"s5":"5","value":7,"items":[{"n":1,"kind":"x"},{"n":2,"kind":"y"},{"n":3,"kind":"x"}]}
        """;

    /// <summary>The output of <c>SELECT VALUE expr</c> as JSON text; "" for Undefined.</summary>
    private static string Value(string expression, string payload = Payload, string topic = "dt/dev1/telemetry")
    {
        var statement = SqlStatement.Parse($"SELECT VALUE {expression} FROM '#'");
        var output = statement.Evaluate(new SqlContext(topic, Encoding.UTF8.GetBytes(payload), clientId: "dev1", timestampMs: 1_700_000_000_000));
        return Encoding.UTF8.GetString(output!.ToBytes());
    }

    private static string? Select(string sql, string payload = Payload, string topic = "dt/dev1/telemetry")
    {
        var output = SqlStatement.Parse(sql).Evaluate(new SqlContext(topic, Encoding.UTF8.GetBytes(payload), clientId: "dev1"));
        return output is null ? null : Encoding.UTF8.GetString(output.ToBytes());
    }

    private static void AssertJson(string expected, string actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), JsonNode.Parse(actual)), $"expected {expected}\n  actual {actual}");

    [Theory]
    // literals and fields
    [InlineData("1", "1")]
    [InlineData("-2", "-2")]
    [InlineData("1.5", "1.5")]
    [InlineData("10.0", "10")]                                  // 2016-03-23: whole decimals become Int
    [InlineData("'text'", "\"text\"")]
    [InlineData("\"dq\"", "\"dq\"")]
    [InlineData("'it''s'", "\"it's\"")]
    [InlineData("true", "true")]
    [InlineData("NULL", "null")]
    [InlineData("temperature", "21.5")]
    [InlineData("nested.level.deep", "7")]
    [InlineData("nested.level", "{\"deep\":7}")]
    [InlineData("missing", "")]
    [InlineData("missing.deeper", "")]
    [InlineData("nothing", "null")]
    [InlineData("tags", "[\"a\",\"b\",\"c\"]")]
    [InlineData("{'a': 1, 'b': name, 'c': missing}", "{\"a\":1,\"b\":\"dev1\"}")]
    [InlineData("[1, 'x', missing, name]", "[1,\"x\",\"dev1\"]")]
    // comparison: numbers and numeric strings; anything else Undefined
    [InlineData("5 > 4", "true")]
    [InlineData("temperature >= 21.5", "true")]
    [InlineData("humidity < 40", "false")]
    [InlineData("s5 > 4", "true")]
    [InlineData("'abc' > 4", "")]
    [InlineData("missing > 4", "")]
    [InlineData("ok > 0", "")]
    // equality: Undefined ⇒ Undefined; mismatched types ⇒ false (<> ⇒ true)
    [InlineData("1 = 1.0", "true")]
    [InlineData("'a' = 'a'", "true")]
    [InlineData("'1' = 1", "false")]
    [InlineData("'1' <> 1", "true")]
    [InlineData("missing = 1", "")]
    [InlineData("missing <> 1", "")]
    [InlineData("NULL = NULL", "true")]
    [InlineData("NULL <> NULL", "false")]
    [InlineData("nothing = NULL", "true")]
    [InlineData("tags = ['a','b','c']", "true")]
    [InlineData("tags = ['c','b','a']", "false")]
    [InlineData("nested = {'level': {'deep': 7}}", "true")]
    [InlineData("name != 'dev2'", "true")]
    // logic: Booleans and "true"/"false" strings; anything else Undefined
    [InlineData("true AND false", "false")]
    [InlineData("true OR false", "true")]
    [InlineData("'TRUE' AND 'true'", "true")]
    [InlineData("NOT ok", "false")]
    [InlineData("NOT 'false'", "true")]
    [InlineData("1 AND true", "")]
    [InlineData("missing OR true", "")]
    [InlineData("NOT 5", "")]
    [InlineData("temperature > 20 AND humidity < 50", "true")]
    [InlineData("NOT temperature > 30 OR false", "true")]
    // arithmetic
    [InlineData("1 + 2", "3")]
    [InlineData("1 + 2.5", "3.5")]
    [InlineData("'a' + 1", "\"a1\"")]
    [InlineData("'5' + 1", "\"51\"")]                         // a string on either side concatenates
    [InlineData("name + '-' + humidity", "\"dev1-40\"")]
    [InlineData("7 / 2", "3")]                                  // Int / Int is integer division
    [InlineData("7.0 / 2", "3")]                                // 7.0 is Int 7 in 2016-03-23
    [InlineData("7.5 / 2", "3.75")]
    [InlineData("'10' - 4", "6")]
    [InlineData("'x' - 4", "")]
    [InlineData("8 % 3", "2")]
    [InlineData("2 * 3 + 4", "10")]
    [InlineData("2 * (3 + 4)", "14")]
    [InlineData("-temperature", "-21.5")]
    [InlineData("1 / 0", "")]
    [InlineData("ok + 1", "")]
    [InlineData("nothing + 1", "null")]
    // CASE
    [InlineData("CASE name WHEN 'dev1' THEN 'one' WHEN 'dev2' THEN 'two' ELSE 'other' END", "\"one\"")]
    [InlineData("CASE name WHEN 'x' THEN 1 END", "")]
    [InlineData("CASE missing WHEN 'x' THEN 1 ELSE 2 END", "")]
    [InlineData("CASE humidity WHEN 40.0 THEN 'forty' ELSE 'no' END", "\"forty\"")]
    [InlineData("CASE WHEN temperature > 30 THEN 'hot' WHEN temperature > 20 THEN 'warm' ELSE 'cold' END", "\"warm\"")]
    public void Expressions_FollowAwsTypeRules(string expression, string expected)
    {
        Assert.Equal(expected, Value(expression));
    }

    [Theory]
    // context
    [InlineData("topic()", "\"dt/dev1/telemetry\"")]
    [InlineData("topic(2)", "\"dev1\"")]
    [InlineData("topic(4)", "")]
    [InlineData("topic(0)", "")]
    [InlineData("clientid()", "\"dev1\"")]
    [InlineData("timestamp()", "1700000000000")]
    [InlineData("sql_version()", "\"2016-03-23\"")]
    [InlineData("accountid()", "\"000000000000\"")]
    [InlineData("traceid()", "")]
    // type and null
    [InlineData("isNull(nothing)", "true")]
    [InlineData("isNull(missing)", "false")]
    [InlineData("isNull(1)", "false")]
    [InlineData("isUndefined(missing)", "true")]
    [InlineData("isUndefined(nothing)", "false")]
    [InlineData("nanvl(missing, 5)", "5")]
    [InlineData("nanvl(nothing, 5)", "5")]
    [InlineData("nanvl(3, 5)", "3")]
    [InlineData("cast('2' AS Int)", "2")]
    [InlineData("cast('2.7' AS Integer)", "2")]
    [InlineData("cast(2.7 AS Int)", "2")]
    [InlineData("cast(true AS Int)", "1")]
    [InlineData("cast('abc' AS Int)", "")]
    [InlineData("cast(1.5 AS String)", "\"1.5\"")]
    [InlineData("cast(tags AS String)", "\"[\\\"a\\\",\\\"b\\\",\\\"c\\\"]\"")]
    [InlineData("cast('1.25' AS Decimal)", "1.25")]
    [InlineData("cast(0 AS Boolean)", "false")]
    [InlineData("cast(3 AS Bool)", "true")]
    [InlineData("cast('TRUE' AS Boolean)", "true")]
    [InlineData("cast(missing AS String)", "")]
    // collections and strings (AWS reference examples)
    [InlineData("get(tags, 1)", "\"b\"")]
    [InlineData("get(tags, 3)", "")]
    [InlineData("get(nested, 'level')", "{\"deep\":7}")]
    [InlineData("get(get(nested, 'level'), 'deep')", "7")]
    [InlineData("get('abc', 1)", "\"b\"")]
    [InlineData("concat()", "")]
    [InlineData("concat(1)", "1")]
    [InlineData("concat('ab', 'cd')", "\"abcd\"")]
    [InlineData("concat('a', 1, true)", "\"a1true\"")]
    [InlineData("concat([1, 2, 3], 4)", "[1,2,3,4]")]
    [InlineData("concat(tags, ['d'])", "[\"a\",\"b\",\"c\",\"d\"]")]
    [InlineData("length('hi')", "2")]
    [InlineData("length(false)", "5")]
    [InlineData("length(missing)", "")]
    [InlineData("numbytes('é')", "2")]
    [InlineData("lower('HeLLo')", "\"hello\"")]
    [InlineData("upper('HeLLo')", "\"HELLO\"")]
    [InlineData("trim('  a b  ')", "\"a b\"")]
    [InlineData("ltrim('  a ')", "\"a \"")]
    [InlineData("rtrim('  a ')", "\"  a\"")]
    [InlineData("lpad('hello', 2)", "\"  hello\"")]
    [InlineData("rpad('hello', 2)", "\"hello  \"")]
    [InlineData("lpad('hello', -3)", "\"hello\"")]
    [InlineData("substring('012345', 0)", "\"012345\"")]
    [InlineData("substring('012345', 2)", "\"2345\"")]
    [InlineData("substring('012345', 2.745)", "\"2345\"")]
    [InlineData("substring(123, 2)", "\"3\"")]
    [InlineData("substring('012345', -1)", "\"012345\"")]
    [InlineData("substring('012345', 1, 3)", "\"12\"")]
    [InlineData("substring('012345', 3, 1)", "\"\"")]
    [InlineData("substring('012345', 4, 100)", "\"45\"")]
    [InlineData("indexof('abcd', 'cd')", "2")]
    [InlineData("indexof('abcd', 'x')", "-1")]
    [InlineData("startswith('cat', 'ca')", "true")]
    [InlineData("startswith(missing, 'ca')", "")]
    [InlineData("endswith('cat', 'at')", "true")]
    [InlineData("replace('abcdbc', 'bc', 'x')", "\"axdx\"")]
    [InlineData("regexp_matches('aaaa', 'a{2,}')", "true")]
    [InlineData("regexp_matches('abc', '^x')", "false")]
    [InlineData("regexp_matches('abc', '(')", "")]
    [InlineData("regexp_replace('abcd', '[ab]', '')", "\"cd\"")]
    [InlineData("regexp_replace('ab12', '([a-z]+)([0-9]+)', '$2$1')", "\"12ab\"")]
    [InlineData("regexp_substr('hihihello', 'hel+o')", "\"hello\"")]
    [InlineData("chr(65)", "\"A\"")]
    // math
    [InlineData("abs(-5)", "5")]
    [InlineData("abs('-2.5')", "2.5")]
    [InlineData("ceil(1.2)", "2")]
    [InlineData("ceil(-1.2)", "-1")]
    [InlineData("floor(1.8)", "1")]
    [InlineData("floor(-1.2)", "-2")]
    [InlineData("round(1.5)", "2")]
    [InlineData("round(-1.5)", "-2")]
    [InlineData("round(-1.1)", "-1")]
    [InlineData("trunc(2.3456, 2)", "2.34")]
    [InlineData("trunc(-2.3456, 1)", "-2.3")]
    [InlineData("mod(8, 3)", "2")]
    [InlineData("mod(8.5, 3)", "2.5")]
    [InlineData("remainder(-8, 3)", "-2")]
    [InlineData("power(2, 10)", "1024")]
    [InlineData("sqrt(9)", "3")]
    [InlineData("sqrt(-1)", "")]
    [InlineData("exp(0)", "1")]
    [InlineData("ln(1)", "0")]
    [InlineData("log(100)", "2")]
    [InlineData("sign(-3)", "-1")]
    [InlineData("sign(0)", "0")]
    [InlineData("cos(0)", "1")]
    [InlineData("atan2(0, 1)", "0")]
    [InlineData("bitand(13, 5)", "5")]
    [InlineData("bitor(12, 10)", "14")]
    [InlineData("bitxor(12, 10)", "6")]
    [InlineData("bitnot(13)", "-14")]
    [InlineData("abs('x')", "")]
    // hashes and encoding
    [InlineData("md5('hello')", "\"5d41402abc4b2a76b9719d911017c592\"")]
    [InlineData("sha1('hello')", "\"aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d\"")]
    [InlineData("sha256('hello')", "\"2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824\"")]
    [InlineData("encode('hello', 'base64')", "\"aGVsbG8=\"")]
    [InlineData("encode('hello', 'hex')", "")]
    [InlineData("decode('aGVsbG8=', 'base64')", "\"hello\"")]
    [InlineData("decode('eyJhIjoxfQ==', 'base64')", "{\"a\":1}")]
    [InlineData("decode('NTA=', 'base64') > 40", "true")]
    [InlineData("decode('@@@', 'base64')", "null")]
    [InlineData("UPPER(name)", "\"DEV1\"")]                     // function names ignore case
    // time (AWS examples: Joda patterns, epoch milliseconds)
    [InlineData("parse_time('yyyy-MM-dd HH:mm:ss', 1520000000000)", "\"2018-03-02 14:13:20\"")]
    [InlineData("parse_time('yyyy-MM-dd\\'T\\'HH:mm:ss.SSSZ', 1520000000123)", "\"2018-03-02T14:13:20.123+00:00\"")]
    [InlineData("parse_time('yyyy-MM-dd HH:mm', 1520000000000, '+01:00')", "\"2018-03-02 15:13\"")]
    [InlineData("parse_time('yyyy', 1520000000000, 'Not/AZone')", "")]
    [InlineData("parse_time('yyyy', 'x')", "")]
    [InlineData("time_to_epoch('2018-03-02 14:13:20', 'yyyy-MM-dd HH:mm:ss')", "1520000000000")]
    [InlineData("time_to_epoch('2018-03-02 15:13:20 +01:00', 'yyyy-MM-dd HH:mm:ss Z')", "1520000000000")]
    [InlineData("time_to_epoch('not a date', 'yyyy-MM-dd')", "")]
    // transform: enrich each element of an array with an object's attributes
    [InlineData("transform('enrichArray', {'site': 'b1'}, items)", "[{\"n\":1,\"kind\":\"x\",\"site\":\"b1\"},{\"n\":2,\"kind\":\"y\",\"site\":\"b1\"},{\"n\":3,\"kind\":\"x\",\"site\":\"b1\"}]")]
    [InlineData("transform('other', {'site': 'b1'}, items)", "")]
    public void Functions_BehaveAsAwsDocuments(string expression, string expected)
    {
        Assert.Equal(expected, Value(expression));
    }

    [Fact]
    public void NewUuid_IsAUuid_AndRand_IsBetweenZeroAndOne()
    {
        Assert.True(Guid.TryParse(JsonNode.Parse(Value("newuuid()"))!.GetValue<string>(), out _));
        var r = JsonNode.Parse(Value("rand()"))!.GetValue<double>();
        Assert.InRange(r, 0, 1);
    }

    [Fact]
    public void BenchmarkRule_SelectsFieldsAndTopicLevel_AndFiltersOnWhere()
    {
        const string Sql = "SELECT temperature, topic(2) AS device FROM 'dt/+/telemetry' WHERE temperature > 0";

        AssertJson("{\"temperature\":21.5,\"device\":\"dev1\"}", Select(Sql)!);
        Assert.Null(Select(Sql, "{\"temperature\":-3}"));
        Assert.Null(Select(Sql, "{\"other\":1}"));                       // Undefined > 0 is not true
        Assert.True(SqlStatement.Parse(Sql).Matches("dt/dev9/telemetry"));
        Assert.False(SqlStatement.Parse(Sql).Matches("dt/dev9/other"));
    }

    [Theory]
    [InlineData("SELECT * FROM 'a/#'", Payload)]
    [InlineData("SELECT name, humidity AS h FROM 'a/#'", "{\"name\":\"dev1\",\"h\":40}")]
    [InlineData("SELECT nested.level.deep AS d FROM 'a/#'", "{\"d\":7}")]
    [InlineData("SELECT nested.level.deep FROM 'a/#'", "{\"deep\":7}")]                       // unnamed: the last field's name
    [InlineData("SELECT name AS device.id, humidity AS device.h FROM 'a/#'", "{\"device\":{\"id\":\"dev1\",\"h\":40}}")]
    [InlineData("SELECT missing, name FROM 'a/#'", "{\"name\":\"dev1\"}")]                  // Undefined is dropped
    [InlineData("SELECT nothing FROM 'a/#'", "{\"nothing\":null}")]                        // Null is kept
    [InlineData("SELECT upper(name) FROM 'a/#'", "{\"upper\":\"DEV1\"}")]
    [InlineData("SELECT 1 + 1, 'x' FROM 'a/#'", "{\"_1\":2,\"_2\":\"x\"}")]
    [InlineData("SELECT VALUE tags FROM 'a/#'", "[\"a\",\"b\",\"c\"]")]
    [InlineData("SELECT value * 2 AS doubled FROM 'a/#'", "{\"doubled\":14}")]                // a field named value
    [InlineData("SELECT value, name FROM 'a/#'", "{\"value\":7,\"name\":\"dev1\"}")]
    [InlineData("SELECT VALUE value FROM 'a/#'", "7")]                      // an array at top level (2016-03-23)
    [InlineData("SELECT (SELECT VALUE n FROM items) AS sensors FROM 'a/#'", "{\"sensors\":[1,2,3]}")]
    [InlineData("SELECT (SELECT n FROM items WHERE kind = 'x') AS xs FROM 'a/#'", "{\"xs\":[{\"n\":1},{\"n\":3}]}")]
    [InlineData("SELECT VALUE (SELECT VALUE kind FROM items WHERE n > 1) FROM 'a/#'", "[\"y\",\"x\"]")]
    public void SelectShapes_AsAws(string sql, string expected)
    {
        AssertJson(expected, Select(sql)!);
    }

    [Fact]
    public void SelectStar_OfAJsonValueThatIsNotAnObject_IsThatValue()
    {
        Assert.Equal("42", Select("SELECT * FROM 'a/#'", "42"));
        Assert.Equal("[1,2]", Select("SELECT * FROM 'a/#'", "[1,2]"));
    }

    [Fact]
    public void SelectStar_WithMoreFields_MergesThem()
    {
        var output = JsonNode.Parse(Select("SELECT *, topic(2) AS device FROM 'a/#'", "{\"t\":1}")!)!;

        Assert.Equal(1, (int)output["t"]!);
        Assert.Equal("dev1", (string)output["device"]!);
    }

    [Fact]
    public void Where_IsEvaluatedBeforeSelect_AndCannotSeeAliases()
    {
        Assert.Null(Select("SELECT temperature AS t FROM 'a/#' WHERE t > 0"));
        Assert.NotNull(Select("SELECT temperature AS t FROM 'a/#' WHERE temperature > 0"));
        Assert.Null(Select("SELECT * FROM 'a/#' WHERE 'yes'"));              // not a Boolean
        Assert.NotNull(Select("SELECT * FROM 'a/#' WHERE 'TRUE'"));
    }

    [Fact]
    public void NonJsonPayload_SelectStarPassesTheBytes_FieldsAreUndefined_Base64Works()
    {
        byte[] binary = [0x00, 0xFF, 0x10, 0x7F];
        var context = new SqlContext("bin/x", binary);

        Assert.Equal(binary, SqlStatement.Parse("SELECT * FROM 'bin/#'").Evaluate(context)!.ToBytes());
        Assert.Equal("{}", Encoding.UTF8.GetString(SqlStatement.Parse("SELECT field FROM 'bin/#'").Evaluate(context)!.ToBytes()));
        Assert.Equal("{\"b\":\"AP8Qfw==\"}", Encoding.UTF8.GetString(SqlStatement.Parse("SELECT encode(*, 'base64') AS b FROM 'bin/#'").Evaluate(context)!.ToBytes()));
        // AWS's example for a numeric payload that is not JSON-typed: decode(encode(*)) compares as a number.
        var numeric = new SqlContext("bin/x", "55"u8.ToArray());
        Assert.NotNull(SqlStatement.Parse("SELECT * FROM 'bin/#' WHERE decode(encode(*, 'base64'), 'base64') > 50").Evaluate(numeric));
    }

    [Fact]
    public void BasicIngest_TopicFunctions_SeeTheTopicWithoutTheRulePrefix()
    {
        Assert.Equal("\"dt/dev7/t\"", Value("topic()", topic: "$aws/rules/myRule/dt/dev7/t"));
        Assert.Equal("\"dev7\"", Value("topic(2)", topic: "$aws/rules/myRule/dt/dev7/t"));
    }

    [Fact]
    public void CatastrophicRegex_TimesOutToUndefined_InsteadOfStallingThePipeline()
    {
        Assert.Equal("", Value("regexp_matches('" + new string('a', 40) + "!', '(a+)+$')"));
    }

    [Theory]
    [InlineData("SELECT", 6, "expected an expression")]
    [InlineData("SELECT * FROM a/b", 14, "expected a topic filter in quotes")]
    [InlineData("SELECT * FROM 'a/#/b'", 14, "is not a valid topic filter")]
    [InlineData("SELECT nosuch(1) FROM 'a'", 7, "unknown function 'nosuch'")]
    [InlineData("SELECT topic(1, 2) FROM 'a'", 7, "takes 0 to 1 argument(s), not 2")]
    [InlineData("SELECT upper() FROM 'a'", 7, "takes 1 argument(s), not 0")]
    [InlineData("SELECT 'open FROM 'a'", 20, "a string literal is not closed")]
    [InlineData("SELECT 'unclosed FROM a", 7, "a string literal is not closed")]
    [InlineData("SELECT a FROM 'a' WHERE", 23, "expected an expression")]
    [InlineData("SELECT a FROM 'a' extra", 18, "expected the end of the statement")]
    [InlineData("SELECT (1 + 2 FROM 'a'", 14, "expected ')'")]
    [InlineData("SELECT CASE a END FROM 'a'", 14, "expected WHEN")]
    [InlineData("SELECT a AS FROM 'a'", 12, "expected a name after AS")]
    [InlineData("SELECT a ; DROP FROM 'a'", 9, "unexpected character ';'")]
    [InlineData("DELETE FROM 'a'", 0, "expected 'SELECT'")]
    public void ParseErrors_NameThePositionAndWhatWasExpected(string sql, int position, string message)
    {
        var error = Assert.Throws<SqlSyntaxException>(() => SqlStatement.Parse(sql));

        Assert.Equal(position, error.Position);
        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.StartsWith($"SQL syntax error at position {position}:", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KeywordsAndFunctionNames_IgnoreCase()
    {
        AssertJson("{\"t\":21.5}", Select("select temperature as t from 'a/#' WHERE temperature > 0 and TRUE")!);
        Assert.Null(Select("SELECT * FROM 'a/#' WHERE TEMPERATURE > 0"));   // field names are JSON keys: case matters
    }
}
