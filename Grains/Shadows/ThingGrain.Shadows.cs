using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.Extensions.Logging;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Grains.Abstractions.Shadows;
using OrleansIot.Grains.Abstractions.Things;
using OrleansIot.Grains.Shadows;

namespace OrleansIot.Grains.Things;

// The thing grain's shadows. Turn-based like the rest of the grain: one request at a time per thing, so a merge,
// its write and its publishes are one unit; concurrency comes from many things writing at once (the store batches
// their writes), not from interleaving inside one thing.
internal sealed partial class ThingGrain
{
    /// <summary>Longest a backend may wait in one call (below Orleans' default response timeout of 30 s).</summary>
    private static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(25);

    private Dictionary<string, ShadowDocument>? _shadows;

    // The rows as stored (immutable strings), beside _shadows: what the index's write-behind builds its section from.
    private Dictionary<string, StoredShadow>? _storedRows;
    private readonly List<ShadowWaiter> _waiters = [];
    private double _requestTokens = -1;
    private long _requestTokensAt;

    public async Task<ShadowResponse> GetShadow(ShadowRequest request)
    {
        var now = time.GetUtcNow();
        var error = ShadowMerge.TryParseToken(request.Payload, out var token) ?? CheckRequest(request, now);
        if (error is not null)
        {
            return Reject(request, ShadowOperation.Get, error, token, now);
        }

        var shadows = await ShadowsAsync();
        if (!shadows.TryGetValue(request.ShadowName ?? "", out var doc) || !doc.Exists)
        {
            return Reject(request, ShadowOperation.Get, ShadowError.NoShadow(request.ShadowName ?? ThingName), token, now);
        }

        var document = ShadowMerge.FullDocument(doc, now.ToUnixTimeSeconds(), token);
        if (request.Channel == ShadowChannel.Mqtt)
        {
            Publish(request.ShadowName, ShadowOperation.Get, "accepted", document);
        }

        ShadowMetrics.Accepted(ShadowOperation.Get);
        CountShadowOperation();
        return new ShadowResponse(200, document);
    }

    public async Task<byte[]?> ReadShadow(string shadowName)
    {
        var shadows = await ShadowsAsync();
        return shadows.TryGetValue(shadowName, out var doc) && doc.Exists
            ? ShadowMerge.FullDocument(doc, time.GetUtcNow().ToUnixTimeSeconds(), null)
            : null;
    }

    public Task<ShadowResponse> UpdateShadow(ShadowRequest request)
    {
        var now = time.GetUtcNow();
        var error = ShadowMerge.TryParseUpdate(request.Payload, out var update, out var token) ?? CheckRequest(request, now);
        if (error is not null)
        {
            return Task.FromResult(Reject(request, ShadowOperation.Update, error, token, now));
        }

        var hash = token is null ? null : RequestHash(request.Payload);
        return ChangeAsync(request, ShadowOperation.Update, token, now, shadows =>
        {
            var current = Current(shadows, request.ShadowName ?? "", now);
            if (hash is not null && Remembered(current, token!, hash, now) is { } earlier)
            {
                // A retry of an update that was accepted: the same answer, nothing changes, no second version.
                var again = System.Text.Encoding.UTF8.GetBytes(earlier.Accepted);
                Publish(request.ShadowName, ShadowOperation.Update, "accepted", again);
                return new ShadowChange(null, new ShadowResponse(200, again), null);
            }

            if (ShadowMerge.Apply(current, update!, now.ToUnixTimeSeconds(), shadowOptions.Value.MaxStateBytes, out var next) is { } refused)
            {
                return new ShadowChange(null, Reject(request, ShadowOperation.Update, refused, token, now), null);
            }

            var accepted = ShadowMerge.AcceptedDocument(update!, next!, token);
            next!.Revision = current.Revision + 1;
            next.Remembered = RememberFor(current.Remembered, now, token, hash, next.Version, accepted);
            return new ShadowChange(next, null, () =>
            {
                Publish(request.ShadowName, ShadowOperation.Update, "accepted", accepted);
                Publish(request.ShadowName, ShadowOperation.Update, "documents", ShadowMerge.DocumentsDocument(current, next, token));
                var delta = ShadowMerge.Delta(next.Desired, next.Reported);
                if (ShadowMerge.PublishesDelta(update!, delta))
                {
                    Publish(request.ShadowName, ShadowOperation.Update, "delta", ShadowMerge.DeltaDocument(delta!, next, token));
                }

                return new ShadowResponse(200, accepted);
            });
        });
    }

    public Task<ShadowResponse> DeleteShadow(ShadowRequest request)
    {
        var now = time.GetUtcNow();
        var error = ShadowMerge.TryParseToken(request.Payload, out var token) ?? CheckRequest(request, now);
        if (error is not null)
        {
            return Task.FromResult(Reject(request, ShadowOperation.Delete, error, token, now));
        }

        return ChangeAsync(request, ShadowOperation.Delete, token, now, shadows =>
        {
            if (!shadows.TryGetValue(request.ShadowName ?? "", out var current) || !current.Exists)
            {
                return new ShadowChange(null, Reject(request, ShadowOperation.Delete, ShadowError.NoShadow(request.ShadowName ?? ThingName), token, now), null);
            }

            // The version is kept (AWS: a shadow created again within 48 hours continues the sequence).
            var next = new ShadowDocument { Version = current.Version, DeletedAt = now, Revision = current.Revision + 1 };
            return new ShadowChange(next, null, () =>
            {
                var document = ShadowMerge.DeletedDocument(next.Version, now.ToUnixTimeSeconds(), token);
                Publish(request.ShadowName, ShadowOperation.Delete, "accepted", document);
                return new ShadowResponse(200, document);
            });
        });
    }

    /// <summary>
    /// Decides a change against the current shadows and writes it; only a written change is announced (published)
    /// and becomes the live document. A write refused by the store means another activation wrote since we read
    /// (moments around a node's death): read again and decide again, once. A failed write answers 500.
    /// </summary>
    private async Task<ShadowResponse> ChangeAsync(ShadowRequest request, ShadowOperation operation, string? token, DateTimeOffset now, Func<Dictionary<string, ShadowDocument>, ShadowChange> decide)
    {
        var key = request.ShadowName ?? "";
        for (var attempt = 0; ; attempt++)
        {
            var shadows = await ShadowsAsync();
            var change = decide(shadows);
            if (change.Next is not { } next)
            {
                return change.Answer!;
            }

            var written = await SaveAsync(key, next);
            if (written == true)
            {
                shadows[key] = next;
                await IndexShadowAsync(key);   // before the answer: a search after it sees the change
                var answer = change.Announce!();
                ShadowMetrics.Accepted(operation);
                CountShadowOperation();
                Signal(key, next);
                return answer;
            }

            _shadows = null;
            if (written is null || attempt > 0)
            {
                return Reject(request, operation, ShadowError.Internal, token, now);
            }
        }
    }

    public async Task<NamedShadowPage> ListNamedShadows(string? nextToken, int pageSize)
    {
        pageSize = Math.Clamp(pageSize <= 0 ? 100 : pageSize, 1, 100);
        var after = DecodePageToken(nextToken);
        var shadows = await ShadowsAsync();
        var names = shadows.Where(s => s.Key.Length > 0 && s.Value.Exists)
            .Select(s => s.Key)
            .Where(n => after is null || string.CompareOrdinal(n, after) > 0)
            .Order(StringComparer.Ordinal)
            .Take(pageSize + 1)
            .ToList();
        string? next = null;
        if (names.Count > pageSize)
        {
            names.RemoveAt(pageSize);
            next = Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(names[^1]));
        }

        return new NamedShadowPage(names, next);
    }

    public async Task<ShadowResponse> WaitForShadowChange(string? shadowName, long afterVersion, TimeSpan timeout)
    {
        // Interleaves (it only waits): the first read goes through the grain's turn like any request.
        if (_shadows is null)
        {
            await this.AsReference<IThingGrain>().ListNamedShadows(null, 1);
        }

        var key = shadowName ?? "";
        var now = time.GetUtcNow();
        if (_shadows!.TryGetValue(key, out var doc) && (doc.Version > afterVersion || (!doc.Exists && doc.Version > 0)))
        {
            return Describe(shadowName, doc, now, 200);
        }

        var waiter = new ShadowWaiter(key, afterVersion, new TaskCompletionSource<ShadowDocument>(TaskCreationOptions.RunContinuationsAsynchronously));
        _waiters.Add(waiter);
        try
        {
            var changed = await waiter.Changed.Task.WaitAsync(timeout > MaxWait ? MaxWait : timeout < TimeSpan.Zero ? TimeSpan.Zero : timeout, time);
            return Describe(shadowName, changed, time.GetUtcNow(), 200);
        }
        catch (TimeoutException)
        {
            _shadows.TryGetValue(key, out doc);
            return Describe(shadowName, doc, time.GetUtcNow(), 408);
        }
        finally
        {
            _waiters.Remove(waiter);
        }
    }

    private ShadowResponse Describe(string? shadowName, ShadowDocument? doc, DateTimeOffset now, int code) =>
        doc is { Exists: true }
            ? new ShadowResponse(code, ShadowMerge.FullDocument(doc, now.ToUnixTimeSeconds(), null))
            : new ShadowResponse(404, ShadowMerge.ErrorDocument(ShadowError.NoShadow(shadowName ?? ThingName), now.ToUnixTimeSeconds(), null));

    private void Signal(string key, ShadowDocument doc)
    {
        foreach (var waiter in _waiters)
        {
            if (waiter.Key == key && (doc.Version > waiter.AfterVersion || !doc.Exists))
            {
                waiter.Changed.TrySetResult(doc);
            }
        }
    }

    private string ThingName => this.GetPrimaryKeyString();

    /// <summary>Names and the per-thing request rate (AWS: 20 requests per second per thing, then 429).</summary>
    private ShadowError? CheckRequest(ShadowRequest request, DateTimeOffset now)
    {
        if (!ThingNames.IsValidThingName(ThingName))
        {
            return new ShadowError(400, "Invalid thing name");
        }

        if (request.ShadowName is not null && !ThingNames.IsValidShadowName(request.ShadowName))
        {
            return new ShadowError(400, "Invalid shadow name");
        }

        var rate = shadowOptions.Value.MaxRequestsPerSecondPerThing;
        if (rate == 0)
        {
            return null;
        }

        // Token bucket: a burst of one second's worth, refilled continuously.
        var ticks = now.UtcTicks;
        _requestTokens = _requestTokens < 0
            ? rate
            : Math.Min(rate, _requestTokens + ((ticks - _requestTokensAt) * rate / (double)TimeSpan.TicksPerSecond));
        _requestTokensAt = ticks;
        if (_requestTokens < 1)
        {
            return ShadowError.TooManyRequests;
        }

        _requestTokens--;
        return null;
    }

    private ShadowResponse Reject(ShadowRequest request, ShadowOperation operation, ShadowError error, string? token, DateTimeOffset now)
    {
        var document = ShadowMerge.ErrorDocument(error, now.ToUnixTimeSeconds(), token);
        ShadowMetrics.Rejected(operation, error.Code);
        CountShadowOperation();
        if (request.Channel == ShadowChannel.Mqtt)
        {
            Publish(request.ShadowName, operation, "rejected", document);
        }

        if (error.Code >= 500)
        {
            LogShadowFailed(logger, ThingName, request.ShadowName ?? "", ShadowTopics.Name(operation));
        }

        return new ShadowResponse(error.Code, document);
    }

    private void Publish(string? shadowName, ShadowOperation operation, string suffix, byte[] document)
    {
        try
        {
            broker.Publish(ShadowTopics.Response(ThingName, shadowName, operation, suffix), document, 1);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The change is stored; a lost notification is repaired by the device's next /get.
            LogShadowPublishFailed(logger, ex, ThingName, suffix);
        }
    }

    /// <summary>The shadow as the next update sees it: a shadow deleted long enough ago starts its versions again.</summary>
    private ShadowDocument Current(Dictionary<string, ShadowDocument> shadows, string key, DateTimeOffset now)
    {
        if (!shadows.TryGetValue(key, out var doc))
        {
            return new ShadowDocument();
        }

        if (!doc.Exists && doc.DeletedAt is { } deleted && now - deleted >= shadowOptions.Value.VersionKeptAfterDelete)
        {
            return new ShadowDocument { Revision = doc.Revision };
        }

        return doc;
    }

    private RememberedUpdate? Remembered(ShadowDocument doc, string token, string hash, DateTimeOffset now)
    {
        var since = (now - shadowOptions.Value.ClientTokenWindow).ToUnixTimeMilliseconds();
        return doc.Remembered.FindLast(r => r.ClientToken == token && r.RequestHash == hash && r.AtUnixMs >= since);
    }

    private List<RememberedUpdate> RememberFor(List<RememberedUpdate> earlier, DateTimeOffset now, string? token, string? hash, long version, byte[] accepted)
    {
        var options = shadowOptions.Value;
        var since = (now - options.ClientTokenWindow).ToUnixTimeMilliseconds();
        var kept = earlier.Where(r => r.AtUnixMs >= since).ToList();
        if (token is not null && options.MaxRememberedClientTokens > 0)
        {
            kept.Add(new RememberedUpdate(token, hash!, now.ToUnixTimeMilliseconds(), version, System.Text.Encoding.UTF8.GetString(accepted)));
        }

        var excess = kept.Count - options.MaxRememberedClientTokens;
        if (excess > 0)
        {
            kept.RemoveRange(0, excess);
        }

        return kept;
    }

    private static string RequestHash(byte[] payload) => Convert.ToHexStringLower(SHA256.HashData(payload).AsSpan(0, 16));

    private static string? DecodePageToken(string? token)
    {
        if (string.IsNullOrEmpty(token))
        {
            return null;
        }

        try
        {
            return System.Text.Encoding.UTF8.GetString(Convert.FromBase64String(token));
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private async Task<Dictionary<string, ShadowDocument>> ShadowsAsync()
    {
        if (_shadows is not null)
        {
            return _shadows;
        }

        var rows = await shadowStore.LoadAsync(ThingName, CancellationToken.None);
        var shadows = new Dictionary<string, ShadowDocument>(StringComparer.Ordinal);
        var stored = new Dictionary<string, StoredShadow>(StringComparer.Ordinal);
        foreach (var row in rows)
        {
            shadows[row.ShadowName] = FromStored(row);
            stored[row.ShadowName] = row;
        }

        _shadows = shadows;
        _storedRows = stored;
        return shadows;
    }

    /// <summary>The pauses before each further try of a shadow write that failed for a passing reason (PostgreSQL restarting).</summary>
    private static readonly TimeSpan[] SaveRetryDelays = [TimeSpan.FromMilliseconds(100), TimeSpan.FromMilliseconds(250), TimeSpan.FromMilliseconds(500)];

    /// <summary>
    /// True when written, false when the store holds a newer revision, null when the store failed. A write that fails
    /// for a passing reason is tried again (the revision check makes that safe: a first try that was stored after all
    /// makes the next one find a newer revision, and the update is decided again on what was stored).
    /// </summary>
    private async Task<bool?> SaveAsync(string key, ShadowDocument doc)
    {
        try
        {
            var row = ToStored(key, doc);
            var written = await DatabaseErrors.RetryTransientAsync<bool>(() => shadowStore.SaveAsync(row, CancellationToken.None), SaveRetryDelays, time);
            if (written)
            {
                _storedRows?[key] = row;
            }

            return written;
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Nothing was announced and the live document is unchanged: the request is rejected with 500.
            LogShadowStoreFailed(logger, ex, ThingName, key);
            _shadows = null;
            return null;
        }
    }

    private StoredShadow ToStored(string key, ShadowDocument doc)
    {
        var document = doc.Exists ? System.Text.Encoding.UTF8.GetString(ShadowMerge.StoredDocument(doc)) : null;
        return new StoredShadow(
            ThingName,
            key,
            doc.Version,
            doc.Revision,
            document,
            doc.DeletedAt?.ToUnixTimeMilliseconds(),
            doc.Remembered.Count == 0 ? null : JsonSerializer.Serialize(doc.Remembered, RememberedJson.Default.ListRememberedUpdate));
    }

    private static ShadowDocument FromStored(StoredShadow row)
    {
        var doc = new ShadowDocument
        {
            Version = row.Version,
            Revision = row.Revision,
            DeletedAt = row.DeletedAtUnixMs is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null,
            Remembered = row.Remembered is null ? [] : JsonSerializer.Deserialize(row.Remembered, RememberedJson.Default.ListRememberedUpdate) ?? [],
        };
        if (ShadowMerge.ParseStoredParts(row.Document) is { } stored)
        {
            doc.Exists = true;
            doc.Timestamp = stored.Timestamp;
            doc.Desired = (JsonObject?)stored.Desired?.DeepClone();
            doc.Reported = (JsonObject?)stored.Reported?.DeepClone();
            doc.DesiredMetadata = (JsonObject?)stored.DesiredMetadata?.DeepClone();
            doc.ReportedMetadata = (JsonObject?)stored.ReportedMetadata?.DeepClone();
        }

        return doc;
    }

    /// <summary>What a request decided: a new document to write and how to announce it, or an answer without a write.</summary>
    private sealed record ShadowChange(ShadowDocument? Next, ShadowResponse? Answer, Func<ShadowResponse>? Announce);

    private sealed record ShadowWaiter(string Key, long AfterVersion, TaskCompletionSource<ShadowDocument> Changed);

    [LoggerMessage(EventId = 2010, Level = LogLevel.Error, Message = "Shadow {Operation} of {ThingName}/{ShadowName} failed with an internal error")]
    private static partial void LogShadowFailed(ILogger logger, string thingName, string shadowName, string operation);

    [LoggerMessage(EventId = 2011, Level = LogLevel.Error, Message = "Could not store shadow {ShadowName} of {ThingName}; the request is rejected with 500")]
    private static partial void LogShadowStoreFailed(ILogger logger, Exception exception, string thingName, string shadowName);

    [LoggerMessage(EventId = 2012, Level = LogLevel.Warning, Message = "Could not publish the shadow {Suffix} message of {ThingName}")]
    private static partial void LogShadowPublishFailed(ILogger logger, Exception exception, string thingName, string suffix);
}

/// <summary>Source-generated JSON for the remembered client tokens (stored with each shadow).</summary>
[System.Text.Json.Serialization.JsonSerializable(typeof(List<RememberedUpdate>))]
internal sealed partial class RememberedJson : System.Text.Json.Serialization.JsonSerializerContext;
