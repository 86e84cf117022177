using System.Text;
using System.Text.Json.Nodes;
using OrleansIot.Grains.Shadows;

namespace OrleansIot.Tests.Shadows;

/// <summary>The shadow engine alone: AWS's validation errors, merge, delta, metadata and documents, including the examples of AWS's shadow documentation.</summary>
[Trait("Category", "Unit")]
public sealed class ShadowMergeTests
{
    private const long T0 = 1_700_000_000;

    // ---------- validation: AWS's error table ----------

    [Theory]
    [InlineData("", 400, "Invalid JSON")]
    [InlineData("not json", 400, "Invalid JSON")]
    [InlineData("{\"state\":{\"desired\":{\"a\":1}}", 400, "Invalid JSON")]          // truncated
    [InlineData("[1,2]", 400, "Invalid JSON")]                                         // not an object
    [InlineData("{\"state\":{\"desired\":{\"a\":1,\"a\":2}}}", 400, "Invalid JSON")]  // duplicate key
    [InlineData("{}", 400, "Missing required node: state")]
    [InlineData("{\"clientToken\":\"x\"}", 400, "Missing required node: state")]
    [InlineData("{\"state\":5}", 400, "State node must be an object")]
    [InlineData("{\"state\":[]}", 400, "State node must be an object")]
    [InlineData("{\"state\":\"on\"}", 400, "State node must be an object")]
    [InlineData("{\"state\":{\"desired\":5}}", 400, "Desired node must be an object")]
    [InlineData("{\"state\":{\"desired\":[1]}}", 400, "Desired node must be an object")]
    [InlineData("{\"state\":{\"reported\":\"x\"}}", 400, "Reported node must be an object")]
    [InlineData("{\"state\":{\"reported\":true}}", 400, "Reported node must be an object")]
    [InlineData("{\"state\":{\"delta\":{\"a\":1}}}", 400, "State contains an invalid node")]
    [InlineData("{\"state\":{\"desired\":{},\"other\":{}}}", 400, "State contains an invalid node")]
    [InlineData("{\"state\":{},\"version\":\"3\"}", 400, "Invalid version")]
    [InlineData("{\"state\":{},\"version\":1.5}", 400, "Invalid version")]
    [InlineData("{\"state\":{},\"version\":-1}", 400, "Invalid version")]
    [InlineData("{\"state\":{},\"version\":null}", 400, "Invalid version")]
    [InlineData("{\"state\":{},\"clientToken\":5}", 400, "Invalid clientToken")]
    [InlineData("{\"state\":{},\"clientToken\":\"12345678901234567890123456789012345678901234567890123456789012345\"}", 400, "Invalid clientToken")]
    [InlineData("{\"state\":{\"desired\":{\"colors\":[null,\"RED\",\"GREEN\"]}}}", 400, "Invalid JSON: arrays may not contain null")]
    [InlineData("{\"state\":{\"reported\":{\"a\":[[1,null]]}}}", 400, "Invalid JSON: arrays may not contain null")]
    [InlineData("{\"state\":{\"desired\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":1}}}}}}}}", 400, "JSON contains too many levels of nesting; maximum is 6")]
    [InlineData("{\"state\":{\"reported\":{\"a\":[[[[[1]]]]]}}}", 400, "JSON contains too many levels of nesting; maximum is 6")]
    public void Update_WithBadRequest_IsRejectedWithAwsError(string payload, int code, string message)
    {
        var error = ShadowMerge.TryParseUpdate(Encoding.UTF8.GetBytes(payload), out var update, out _);

        Assert.NotNull(error);
        Assert.Null(update);
        Assert.Equal(code, error.Code);
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void Update_NotUtf8_IsRejectedWith415()
    {
        byte[] payload = [.. "{\"state\":{\"reported\":{\"a\":\""u8, 0xC3, 0x28, .. "\"}}}"u8];

        var error = ShadowMerge.TryParseUpdate(payload, out _, out _);

        Assert.Equal(415, error!.Code);
        Assert.Equal("Unsupported documented encoding; supported encoding is UTF-8", error.Message);
    }

    [Fact]
    public void Update_HugelyNested_IsRejectedAsTooDeep_WithoutBlowingTheStack()
    {
        var payload = "{\"state\":{\"desired\":" + string.Concat(Enumerable.Repeat("{\"a\":", 5000)) + "1" + new string('}', 5000) + "}}";

        var error = ShadowMerge.TryParseUpdate(Encoding.UTF8.GetBytes(payload), out _, out _);

        Assert.Equal(400, error!.Code);
        Assert.Contains("nesting", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{\"state\":{\"desired\":{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":1}}}}}}}")]   // five levels inside the section
    [InlineData("{\"state\":{\"reported\":{\"a\":[[[[1]]]]}}}")]
    [InlineData("{\"state\":{\"desired\":{\"ok\":\"12345678901234567890123456789012345678901234567890123456789012345\"}},\"clientToken\":\"1234567890123456789012345678901234567890123456789012345678901234\"}")]
    [InlineData("{\"state\":null}")]
    [InlineData("{\"state\":{}}")]
    [InlineData("{\"state\":{\"desired\":null,\"reported\":{\"color\":\"red\"}}}")]
    [InlineData("{\"state\":{\"reported\":{\"temp\":55}},\"other\":{\"ignored\":[null]},\"version\":0}")]
    public void Update_AtTheLimits_IsValid(string payload)
    {
        Assert.Null(ShadowMerge.TryParseUpdate(Encoding.UTF8.GetBytes(payload), out var update, out _));
        Assert.NotNull(update);
    }

    [Fact]
    public void Rejection_EchoesTheClientToken_WhenItWasReadable()
    {
        var error = ShadowMerge.TryParseUpdate("{\"clientToken\":\"t-1\",\"state\":5}"u8.ToArray(), out _, out var token);

        Assert.Equal(400, error!.Code);
        Assert.Equal("t-1", token);
        var document = Parse(ShadowMerge.ErrorDocument(error, T0, token));
        Assert.Equal(400, (int)document["code"]!);
        Assert.Equal("State node must be an object", (string)document["message"]!);
        Assert.Equal("t-1", (string)document["clientToken"]!);
        Assert.Equal(T0, (long)document["timestamp"]!);
    }

    [Theory]
    [InlineData("", null)]
    [InlineData("{}", null)]
    [InlineData("{\"clientToken\":\"abc\"}", "abc")]
    public void GetAndDelete_AcceptAnEmptyPayloadOrAClientToken(string payload, string? expected)
    {
        Assert.Null(ShadowMerge.TryParseToken(Encoding.UTF8.GetBytes(payload), out var token));
        Assert.Equal(expected, token);
    }

    // ---------- merge ----------

    [Theory]
    // a field set, changed, removed by null
    [InlineData("{}", "{\"desired\":{\"a\":1}}", "{\"desired\":{\"a\":1}}")]
    [InlineData("{\"desired\":{\"a\":1}}", "{\"desired\":{\"a\":2}}", "{\"desired\":{\"a\":2}}")]
    [InlineData("{\"desired\":{\"a\":1,\"b\":2}}", "{\"desired\":{\"a\":null}}", "{\"desired\":{\"b\":2}}")]
    // only the named fields change
    [InlineData("{\"desired\":{\"a\":1},\"reported\":{\"a\":0}}", "{\"reported\":{\"b\":true}}", "{\"desired\":{\"a\":1},\"reported\":{\"a\":0,\"b\":true}}")]
    // a null section removes the section (AWS "Empty shadow document properties" example)
    [InlineData("{\"desired\":{\"color\":\"green\"},\"reported\":{\"color\":\"green\"}}", "{\"reported\":{\"color\":\"red\"},\"desired\":null}", "{\"reported\":{\"color\":\"red\"}}")]
    // a null state removes both sections
    [InlineData("{\"desired\":{\"a\":1},\"reported\":{\"a\":1}}", null, "{}")]
    // the last field removed removes the section
    [InlineData("{\"desired\":{\"a\":1},\"reported\":{\"b\":1}}", "{\"desired\":{\"a\":null}}", "{\"reported\":{\"b\":1}}")]
    // nested objects merge field by field
    [InlineData("{\"desired\":{\"lights\":{\"color\":{\"r\":1,\"g\":2}}}}", "{\"desired\":{\"lights\":{\"color\":{\"g\":3,\"b\":4}}}}", "{\"desired\":{\"lights\":{\"color\":{\"r\":1,\"g\":3,\"b\":4}}}}")]
    [InlineData("{\"desired\":{\"lights\":{\"on\":true,\"level\":3}}}", "{\"desired\":{\"lights\":{\"level\":null}}}", "{\"desired\":{\"lights\":{\"on\":true}}}")]
    // an object replaces a value and a value replaces an object
    [InlineData("{\"desired\":{\"a\":5}}", "{\"desired\":{\"a\":{\"x\":1}}}", "{\"desired\":{\"a\":{\"x\":1}}}")]
    [InlineData("{\"desired\":{\"a\":{\"x\":1}}}", "{\"desired\":{\"a\":5}}", "{\"desired\":{\"a\":5}}")]
    // arrays replace whole (AWS "Array values in shadow documents" example)
    [InlineData("{\"desired\":{\"colors\":[\"RED\",\"GREEN\",\"BLUE\"]}}", "{\"desired\":{\"colors\":[\"RED\"]}}", "{\"desired\":{\"colors\":[\"RED\"]}}")]
    [InlineData("{\"desired\":{\"list\":[{\"a\":1},{\"b\":2}]}}", "{\"desired\":{\"list\":[{\"c\":3}]}}", "{\"desired\":{\"list\":[{\"c\":3}]}}")]
    // removing what is not there changes nothing
    [InlineData("{\"reported\":{\"a\":1}}", "{\"reported\":{\"zzz\":null}}", "{\"reported\":{\"a\":1}}")]
    // types are kept
    [InlineData("{}", "{\"reported\":{\"s\":\"x\",\"n\":1.5,\"b\":false,\"o\":{},\"l\":[]}}", "{\"reported\":{\"s\":\"x\",\"n\":1.5,\"b\":false,\"o\":{},\"l\":[]}}")]
    public void Update_MergesAsAws(string initial, string? state, string expected)
    {
        var doc = Document(initial);
        var update = Update(state is null ? "{\"state\":null}" : $"{{\"state\":{state}}}");

        Assert.Null(ShadowMerge.Apply(doc, update, T0 + 10, 8192, out var next));

        AssertJson(expected, State(next!));
        Assert.Equal(doc.Version + 1, next!.Version);
    }

    [Fact]
    public void Update_DoesNotChangeTheCurrentDocument_SoARefusedWriteLeavesNoTrace()
    {
        var doc = Document("{\"desired\":{\"a\":{\"b\":1}}}");

        Assert.Null(ShadowMerge.Apply(doc, Update("{\"state\":{\"desired\":{\"a\":{\"b\":2,\"c\":3}}}}"), T0 + 1, 8192, out _));

        AssertJson("{\"desired\":{\"a\":{\"b\":1}}}", State(doc));
        Assert.Equal(1, doc.Version);
    }

    // ---------- metadata ----------

    [Fact]
    public void Metadata_HasATimestampPerLeaf_NestedLikeTheState_AndPerArrayElement()
    {
        var doc = Document("{}");
        ShadowMerge.Apply(doc, Update("{\"state\":{\"reported\":{\"t\":1,\"lights\":{\"color\":{\"r\":1}},\"colors\":[\"R\",{\"x\":1}]}}}"), T0, 8192, out var next);

        AssertJson(
            $"{{\"t\":{{\"timestamp\":{T0}}},\"lights\":{{\"color\":{{\"r\":{{\"timestamp\":{T0}}}}}}},\"colors\":[{{\"timestamp\":{T0}}},{{\"x\":{{\"timestamp\":{T0}}}}}]}}",
            next!.ReportedMetadata!);
    }

    [Fact]
    public void Metadata_OfUntouchedFields_KeepsTheirTimestamp()
    {
        var doc = Document("{}");
        ShadowMerge.Apply(doc, Update("{\"state\":{\"desired\":{\"a\":1,\"n\":{\"x\":1,\"y\":1}}}}"), T0, 8192, out var first);
        ShadowMerge.Apply(first!, Update("{\"state\":{\"desired\":{\"a\":2,\"n\":{\"y\":2}}}}"), T0 + 60, 8192, out var second);

        AssertJson(
            $"{{\"a\":{{\"timestamp\":{T0 + 60}}},\"n\":{{\"x\":{{\"timestamp\":{T0}}},\"y\":{{\"timestamp\":{T0 + 60}}}}}}}",
            second!.DesiredMetadata!);
    }

    [Fact]
    public void Metadata_OfAFieldNamedTimestamp_IsNotConfusedWithALeaf()
    {
        var doc = Document("{}");
        ShadowMerge.Apply(doc, Update("{\"state\":{\"desired\":{\"a\":5}}}"), T0, 8192, out var first);
        ShadowMerge.Apply(first!, Update("{\"state\":{\"desired\":{\"a\":{\"timestamp\":7}}}}"), T0 + 1, 8192, out var second);

        AssertJson($"{{\"a\":{{\"timestamp\":{{\"timestamp\":{T0 + 1}}}}}}}", second!.DesiredMetadata!);
    }

    // ---------- delta ----------

    [Theory]
    // AWS "Delta state" example: only desired fields, differing or missing in reported
    [InlineData("{\"color\":\"RED\",\"state\":\"STOP\"}", "{\"color\":\"GREEN\",\"engine\":\"ON\"}", "{\"color\":\"RED\",\"state\":\"STOP\"}")]
    // AWS nested example: the path to the differing leaf, nothing else
    [InlineData("{\"lights\":{\"color\":{\"r\":255,\"g\":255,\"b\":255}}}", "{\"lights\":{\"color\":{\"r\":255,\"g\":0,\"b\":255}}}", "{\"lights\":{\"color\":{\"g\":255}}}")]
    // arrays compared whole, the whole desired array copied
    [InlineData("{\"colors\":[\"RED\",\"GREEN\"]}", "{\"colors\":[\"RED\"]}", "{\"colors\":[\"RED\",\"GREEN\"]}")]
    [InlineData("{\"colors\":[\"RED\"]}", "{\"colors\":[\"RED\"]}", null)]
    [InlineData("{\"m\":[{\"a\":1}]}", "{\"m\":[{\"a\":1}]}", null)]
    // equal values, no delta
    [InlineData("{\"a\":1,\"b\":\"x\",\"c\":true}", "{\"a\":1,\"b\":\"x\",\"c\":true,\"extra\":5}", null)]
    // a desired object against a reported value (and the reverse) differs whole
    [InlineData("{\"a\":{\"x\":1}}", "{\"a\":5}", "{\"a\":{\"x\":1}}")]
    [InlineData("{\"a\":5}", "{\"a\":{\"x\":1}}", "{\"a\":5}")]
    // types matter
    [InlineData("{\"a\":1}", "{\"a\":\"1\"}", "{\"a\":1}")]
    [InlineData("{\"a\":true}", "{\"a\":1}", "{\"a\":true}")]
    // no reported section: all of desired
    [InlineData("{\"a\":1,\"b\":{\"c\":2}}", null, "{\"a\":1,\"b\":{\"c\":2}}")]
    // no desired section: no delta
    [InlineData(null, "{\"a\":1}", null)]
    public void Delta_IsWhatDesiredWantsAndReportedLacks(string? desired, string? reported, string? expected)
    {
        var delta = ShadowMerge.Delta(Obj(desired), Obj(reported));

        if (expected is null)
        {
            Assert.Null(delta);
        }
        else
        {
            AssertJson(expected, delta!);
        }
    }

    [Theory]
    // desired changed: published
    [InlineData("{\"desired\":{\"a\":1}}", "{\"desired\":{\"a\":2}}", true)]
    // reported a still-different value of a desired field: published
    [InlineData("{\"desired\":{\"a\":1},\"reported\":{\"a\":0}}", "{\"reported\":{\"a\":3}}", true)]
    // removed a reported field that is still desired (AWS: it is included): published
    [InlineData("{\"desired\":{\"a\":1},\"reported\":{\"a\":1}}", "{\"reported\":{\"a\":null}}", true)]
    // reported something nobody desires while a delta remains: not repeated
    [InlineData("{\"desired\":{\"a\":1},\"reported\":{\"a\":0}}", "{\"reported\":{\"temp\":20}}", false)]
    // reported what was desired: no delta left
    [InlineData("{\"desired\":{\"a\":1},\"reported\":{\"a\":0}}", "{\"reported\":{\"a\":1}}", false)]
    // removed desired: nothing to publish
    [InlineData("{\"desired\":{\"a\":1}}", "{\"desired\":null}", false)]
    public void DeltaTopic_IsPublishedWhenTheUpdateConcernsTheDelta(string initial, string state, bool published)
    {
        var update = Update($"{{\"state\":{state}}}");
        ShadowMerge.Apply(Document(initial), update, T0, 8192, out var next);

        Assert.Equal(published, ShadowMerge.PublishesDelta(update, ShadowMerge.Delta(next!.Desired, next.Reported)));
    }

    // ---------- version and size ----------

    [Fact]
    public void OptimisticLocking_AsAwsExample_RejectsAStaleVersion_AndAcceptsTheCurrentOne()
    {
        var doc = Document("{\"desired\":{\"colors\":[\"RED\",\"GREEN\",\"BLUE\"]}}", version: 10);

        var conflict = ShadowMerge.Apply(doc, Update("{\"state\":{\"desired\":{\"colors\":[\"BLUE\"]}},\"version\":9}"), T0, 8192, out _);
        var accepted = ShadowMerge.Apply(doc, Update("{\"state\":{\"desired\":{\"colors\":[\"BLUE\"]}},\"version\":10}"), T0, 8192, out var next);

        Assert.Equal(new ShadowError(409, "Version conflict"), conflict);
        Assert.Null(accepted);
        Assert.Equal(11, next!.Version);
        AssertJson("{\"desired\":{\"colors\":[\"BLUE\"]}}", State(next));
    }

    [Fact]
    public void Version_OfANewShadow_IsMatchedByZero()
    {
        Assert.Null(ShadowMerge.Apply(new ShadowDocument(), Update("{\"state\":{},\"version\":0}"), T0, 8192, out var next));
        Assert.Equal(1, next!.Version);
        Assert.NotNull(ShadowMerge.Apply(new ShadowDocument(), Update("{\"state\":{},\"version\":1}"), T0, 8192, out _));
    }

    [Fact]
    public void Size_CountsTheMergedState_NotTheRequest_AndNotMetadata()
    {
        var big = new string('x', 4000);
        var doc = Document($"{{\"desired\":{{\"a\":\"{big}\"}},\"reported\":{{\"a\":\"{big}\"}}}}");

        // A small update fails when the stored state is nearly full (AWS: "a 44-byte update can fail").
        var error = ShadowMerge.Apply(doc, Update("{\"state\":{\"reported\":{\"b\":\"" + new string('y', 200) + "\"}}}"), T0, 8192, out _);
        // ... and an update that frees room passes.
        var ok = ShadowMerge.Apply(doc, Update("{\"state\":{\"reported\":{\"a\":null,\"b\":\"" + new string('y', 200) + "\"}}}"), T0, 8192, out var next);

        Assert.Equal(new ShadowError(413, "The payload exceeds the maximum size allowed"), error);
        Assert.Null(ok);
        Assert.True(ShadowMerge.StateBytes(next!) < 8192);
    }

    // ---------- documents ----------

    [Fact]
    public void AcceptedDocument_CarriesOnlyTheRequestsFields_WithMetadata_Version_Timestamp_Token()
    {
        var doc = Document("{\"desired\":{\"keep\":1},\"reported\":{\"r\":1}}", version: 4);
        var update = Update("{\"state\":{\"desired\":{\"color\":{\"r\":10},\"engine\":\"ON\",\"keep\":null}},\"clientToken\":\"tok\"}");
        ShadowMerge.Apply(doc, update, T0 + 5, 8192, out var next);

        var accepted = Parse(ShadowMerge.AcceptedDocument(update, next!, "tok"));

        AssertJson("{\"desired\":{\"color\":{\"r\":10},\"engine\":\"ON\",\"keep\":null}}", accepted["state"]!);
        AssertJson($"{{\"desired\":{{\"color\":{{\"r\":{{\"timestamp\":{T0 + 5}}}}},\"engine\":{{\"timestamp\":{T0 + 5}}},\"keep\":{{\"timestamp\":{T0 + 5}}}}}}}", accepted["metadata"]!);
        Assert.Equal(5, (long)accepted["version"]!);
        Assert.Equal(T0 + 5, (long)accepted["timestamp"]!);
        Assert.Equal("tok", (string)accepted["clientToken"]!);
    }

    [Fact]
    public void FullDocument_HasDesiredReportedDeltaAndMetadata()
    {
        var doc = Document("{\"desired\":{\"color\":\"RED\",\"state\":\"STOP\"},\"reported\":{\"color\":\"GREEN\",\"engine\":\"ON\"}}", version: 17);

        var full = Parse(ShadowMerge.FullDocument(doc, T0 + 99, null));

        AssertJson("{\"desired\":{\"color\":\"RED\",\"state\":\"STOP\"},\"reported\":{\"color\":\"GREEN\",\"engine\":\"ON\"},\"delta\":{\"color\":\"RED\",\"state\":\"STOP\"}}", full["state"]!);
        Assert.NotNull(full["metadata"]!["desired"]!["color"]!["timestamp"]);
        Assert.NotNull(full["metadata"]!["reported"]!["engine"]!["timestamp"]);
        Assert.Equal(17, (long)full["version"]!);
        Assert.Equal(T0 + 99, (long)full["timestamp"]!);
        Assert.False(full.AsObject().ContainsKey("clientToken"));
    }

    [Fact]
    public void DeltaDocument_HasNoWrapper_AndTheDesiredMetadataOfItsFields()
    {
        var doc = Document("{}");
        ShadowMerge.Apply(doc, Update("{\"state\":{\"desired\":{\"lights\":{\"color\":{\"r\":255,\"g\":255}},\"same\":1}}}"), T0, 8192, out var first);
        ShadowMerge.Apply(first!, Update("{\"state\":{\"reported\":{\"lights\":{\"color\":{\"r\":255,\"g\":0}},\"same\":1}}}"), T0 + 7, 8192, out var next);

        var delta = Parse(ShadowMerge.DeltaDocument(ShadowMerge.Delta(next!.Desired, next.Reported)!, next, "c"));

        AssertJson("{\"lights\":{\"color\":{\"g\":255}}}", delta["state"]!);
        AssertJson($"{{\"lights\":{{\"color\":{{\"g\":{{\"timestamp\":{T0}}}}}}}}}", delta["metadata"]!);
        Assert.Equal(3, (long)delta["version"]!);
        Assert.Equal("c", (string)delta["clientToken"]!);
    }

    [Fact]
    public void DocumentsDocument_HasPreviousAndCurrent_PreviousNullForANewShadow()
    {
        var created = Update("{\"state\":{\"reported\":{\"a\":1}}}");
        ShadowMerge.Apply(new ShadowDocument(), created, T0, 8192, out var first);
        ShadowMerge.Apply(first!, Update("{\"state\":{\"reported\":{\"a\":2}}}"), T0 + 1, 8192, out var second);

        var initial = Parse(ShadowMerge.DocumentsDocument(new ShadowDocument(), first!, null));
        var changed = Parse(ShadowMerge.DocumentsDocument(first!, second!, "k"));

        Assert.Null(initial["previous"]);
        AssertJson("{\"reported\":{\"a\":1}}", changed["previous"]!["state"]!);
        Assert.Equal(1, (long)changed["previous"]!["version"]!);
        AssertJson("{\"reported\":{\"a\":2}}", changed["current"]!["state"]!);
        Assert.Equal(2, (long)changed["current"]!["version"]!);
        Assert.Equal(T0 + 1, (long)changed["current"]!["metadata"]!["reported"]!["a"]!["timestamp"]!);
        Assert.Equal("k", (string)changed["clientToken"]!);
    }

    [Fact]
    public void Documents_KeepNonAsciiTextAsItIs()
    {
        var update = Update("{\"state\":{\"reported\":{\"name\":\"Küche 温度\"}}}");
        ShadowMerge.Apply(new ShadowDocument(), update, T0, 8192, out var next);

        Assert.Contains("Küche 温度", Encoding.UTF8.GetString(ShadowMerge.AcceptedDocument(update, next!, null)), StringComparison.Ordinal);
    }

    // ---------- helpers ----------

    private static ShadowUpdate Update(string json)
    {
        Assert.Null(ShadowMerge.TryParseUpdate(Encoding.UTF8.GetBytes(json), out var update, out _));
        return update!;
    }

    /// <summary>A document holding <paramref name="state"/> at <paramref name="version"/>, stamped T0.</summary>
    private static ShadowDocument Document(string state, long version = 1)
    {
        var doc = new ShadowDocument();
        if (state != "{}")
        {
            Assert.Null(ShadowMerge.Apply(doc, Update($"{{\"state\":{state}}}"), T0, 1 << 20, out var next));
            doc = next!;
        }

        doc.Version = version;
        doc.Exists = true;
        return doc;
    }

    private static JsonObject State(ShadowDocument doc)
    {
        var state = new JsonObject();
        if (doc.Desired is not null)
        {
            state["desired"] = doc.Desired.DeepClone();
        }

        if (doc.Reported is not null)
        {
            state["reported"] = doc.Reported.DeepClone();
        }

        return state;
    }

    private static JsonObject? Obj(string? json) => json is null ? null : (JsonObject)JsonNode.Parse(json)!;

    private static JsonNode Parse(byte[] json) => JsonNode.Parse(json)!;

    private static void AssertJson(string expected, JsonNode actual) =>
        Assert.True(JsonNode.DeepEquals(JsonNode.Parse(expected), actual), $"expected {expected}\n  actual {actual.ToJsonString()}");
}
