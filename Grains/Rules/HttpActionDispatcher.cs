using System.Diagnostics;
using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace OrleansIot.Grains.Rules;

/// <summary>One output on its way to an HTTP endpoint (the <c>http</c> action).</summary>
internal sealed record HttpDelivery(
    Uri Url,
    IReadOnlyList<KeyValuePair<string, string>> Headers,
    byte[] Body,
    HttpActionSettings Settings,
    string RuleName,
    Func<Exception, Task> OnFailure)
{
    public long Queued { get; } = Stopwatch.GetTimestamp();
}

/// <summary>How one <c>http</c> action sends: its timeout, retries, and batching (AWS's <c>batchConfig</c>).</summary>
internal sealed record HttpActionSettings(TimeSpan Timeout, int MaxRetries, int MaxBatchSize, TimeSpan MaxBatchOpen);

/// <summary>
/// Sends the <c>http</c> action's requests off the evaluators' turns, so a slow or dead endpoint never holds up
/// the telemetry partition or other rules. Per endpoint (scheme, host and port): a bounded queue, a few concurrent
/// senders, retries with exponential backoff and jitter (5xx, 429, timeouts, connection errors; other 4xx fail at
/// once), batching of outputs to the same URL into one JSON array when the action asks for it, and a circuit
/// breaker: after <see cref="RulesOptions.HttpBreakerFailures"/> deliveries in a row failed, new and queued
/// deliveries fail at once (the error action runs) for <see cref="RulesOptions.HttpBreakerOpen"/>, then one
/// delivery tries the endpoint again. A full queue also fails the action at once.
/// </summary>
internal sealed partial class HttpActionDispatcher : IAsyncDisposable
{
    private readonly HttpClient _client;
    private readonly RulesOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger<HttpActionDispatcher> _logger;
    private readonly Dictionary<string, Endpoint> _endpoints = new(StringComparer.OrdinalIgnoreCase);
    private readonly CancellationTokenSource _stopping = new();

    public HttpActionDispatcher(IOptions<RulesOptions> options, TimeProvider time, ILogger<HttpActionDispatcher> logger)
    {
        _options = options.Value;
        _time = time;
        _logger = logger;
        _client = new HttpClient(new SocketsHttpHandler
        {
            PooledConnectionLifetime = TimeSpan.FromMinutes(2),
            ConnectTimeout = TimeSpan.FromSeconds(5),
            AllowAutoRedirect = false,
        })
        { Timeout = Timeout.InfiniteTimeSpan };
    }

    /// <summary>Queues a delivery; throws (failing the action now) when the endpoint's breaker is open or its queue is full.</summary>
    public void Enqueue(HttpDelivery delivery)
    {
        var endpoint = EndpointFor(delivery.Url);
        if (endpoint.IsOpen(_time.GetUtcNow()))
        {
            throw new HttpRequestException($"http: circuit open for {endpoint.Name} after {_options.HttpBreakerFailures} failed deliveries in a row; retrying it after {_options.HttpBreakerOpen}.");
        }

        if (!endpoint.Queue.Writer.TryWrite(delivery))
        {
            throw new HttpRequestException($"http: the queue for {endpoint.Name} is full ({_options.HttpQueueCapacity} waiting).");
        }
    }

    public async ValueTask DisposeAsync()
    {
        List<Endpoint> endpoints;
        lock (_endpoints)
        {
            endpoints = [.. _endpoints.Values];
        }

        foreach (var endpoint in endpoints)
        {
            endpoint.Queue.Writer.TryComplete();
        }

        await _stopping.CancelAsync();
        await Task.WhenAll(endpoints.SelectMany(e => e.Senders));
        _client.Dispose();
        _stopping.Dispose();
    }

    private Endpoint EndpointFor(Uri url)
    {
        var name = url.GetLeftPart(UriPartial.Authority);
        lock (_endpoints)
        {
            if (!_endpoints.TryGetValue(name, out var endpoint))
            {
                _endpoints[name] = endpoint = new Endpoint(name, _options.HttpQueueCapacity, _options.HttpConcurrency);
                endpoint.Senders.Add(Task.Run(() => SendLoopAsync(endpoint)));
            }

            return endpoint;
        }
    }

    /// <summary>
    /// One reader per endpoint forms the batches (so concurrent senders never split one), and hands each to a send
    /// running alongside at most <see cref="RulesOptions.HttpConcurrency"/> others.
    /// </summary>
    private async Task SendLoopAsync(Endpoint endpoint)
    {
        var reader = endpoint.Queue.Reader;
        HttpDelivery? carried = null;
        try
        {
            while (carried is not null || await reader.WaitToReadAsync(_stopping.Token))
            {
                var first = carried ?? (reader.TryRead(out var next) ? next : null);
                carried = null;
                if (first is null)
                {
                    continue;
                }

                var batch = new List<HttpDelivery> { first };
                if (first.Settings.MaxBatchSize > 1)
                {
                    carried = await FillBatchAsync(reader, batch, first);
                }

                await endpoint.InFlight.WaitAsync(_stopping.Token);
                _ = Task.Run(async () =>
                {
                    try
                    {
                        await SendAsync(endpoint, batch);
                    }
                    catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
                    {
                        // stopping
                    }
                    finally
                    {
                        endpoint.InFlight.Release();
                    }
                });
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
            // stopping: what is still queued dies with the node (see docs/architecture.md, delivery guarantees)
        }
    }

    /// <summary>Adds outputs for the same URL and action until the batch is full or has been open long enough; returns one that does not belong.</summary>
    private async Task<HttpDelivery?> FillBatchAsync(ChannelReader<HttpDelivery> reader, List<HttpDelivery> batch, HttpDelivery first)
    {
        using var open = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        open.CancelAfter(first.Settings.MaxBatchOpen);
        while (batch.Count < first.Settings.MaxBatchSize)
        {
            HttpDelivery? next;
            if (!reader.TryRead(out next))
            {
                try
                {
                    if (!await reader.WaitToReadAsync(open.Token) || !reader.TryRead(out next))
                    {
                        return null;
                    }
                }
                catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
                {
                    return null;   // the batch window closed
                }
            }

            if (next.Url != first.Url || !ReferenceEquals(next.Settings, first.Settings))
            {
                return next;
            }

            batch.Add(next);
        }

        return null;
    }

    private async Task SendAsync(Endpoint endpoint, List<HttpDelivery> batch)
    {
        var first = batch[0];
        Exception? failure = null;
        if (endpoint.IsOpen(_time.GetUtcNow()))
        {
            failure = new HttpRequestException($"http: circuit open for {endpoint.Name}.");
        }
        else
        {
            // With batching on, always an array (also of one), so the receiver sees one shape.
            var body = first.Settings.MaxBatchSize > 1 ? JsonArray(batch) : first.Body;
            for (var attempt = 0; ; attempt++)
            {
                (var retry, failure) = await TryOnceAsync(first, body);
                if (failure is null || !retry || attempt >= first.Settings.MaxRetries)
                {
                    break;
                }

                // Exponential backoff with full jitter: 100 ms, 200 ms, 400 ms … at most 5 s.
                var ceiling = Math.Min(5000, 100 * (1 << Math.Min(attempt, 10)));
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.Next(ceiling / 2, ceiling + 1)), _time, _stopping.Token);
            }
        }

        if (failure is null)
        {
            endpoint.Succeeded();
            foreach (var delivery in batch)
            {
                RuleMetrics.Executed(delivery.RuleName, "HttpAction", delivery.Queued);
            }

            return;
        }

        if (endpoint.Failed(_time.GetUtcNow(), _options.HttpBreakerFailures, _options.HttpBreakerOpen))
        {
            LogBreakerOpened(_logger, endpoint.Name, _options.HttpBreakerOpen);
        }

        foreach (var delivery in batch)
        {
            RuleMetrics.Failed(delivery.RuleName, "HttpAction", delivery.Queued);
            try
            {
                await delivery.OnFailure(failure);
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                LogErrorActionFailed(_logger, ex, delivery.RuleName);
            }
        }
    }

    private async Task<(bool Retry, Exception? Failure)> TryOnceAsync(HttpDelivery first, byte[] body)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(_stopping.Token);
        timeout.CancelAfter(first.Settings.Timeout);
        try
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, first.Url) { Content = new ByteArrayContent(body) };
            request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/json");
            foreach (var (key, value) in first.Headers)
            {
                if (!request.Headers.TryAddWithoutValidation(key, value))
                {
                    request.Content.Headers.TryAddWithoutValidation(key, value);
                }
            }

            using var response = await _client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
            if (response.IsSuccessStatusCode)
            {
                return (false, null);
            }

            var retry = (int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests;
            return (retry, new HttpRequestException($"http: {first.Url} answered {(int)response.StatusCode} {response.ReasonPhrase}.", null, response.StatusCode));
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            return (true, new TimeoutException($"http: {first.Url} did not answer within {first.Settings.Timeout.TotalMilliseconds} ms."));
        }
        catch (HttpRequestException ex)
        {
            return (true, new HttpRequestException($"http: {first.Url}: {ex.Message}", ex));
        }
    }

    private static byte[] JsonArray(List<HttpDelivery> batch)
    {
        var size = 2 + batch.Sum(d => d.Body.Length + 1);
        var buffer = new byte[size - 1];
        buffer[0] = (byte)'[';
        var at = 1;
        for (var i = 0; i < batch.Count; i++)
        {
            if (i > 0)
            {
                buffer[at++] = (byte)',';
            }

            batch[i].Body.CopyTo(buffer, at);
            at += batch[i].Body.Length;
        }

        buffer[at] = (byte)']';
        return buffer;
    }

    private sealed class Endpoint(string name, int capacity, int concurrency)
    {
        private readonly Lock _lock = new();
        private int _failures;
        private DateTimeOffset _openUntil;

        public string Name { get; } = name;

        public Channel<HttpDelivery> Queue { get; } = Channel.CreateBounded<HttpDelivery>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait });

        public List<Task> Senders { get; } = [];

        public SemaphoreSlim InFlight { get; } = new(concurrency, concurrency);

        /// <summary>Open: failing fast. Once the open period has passed, deliveries try again (half-open): one more failure re-opens it.</summary>
        public bool IsOpen(DateTimeOffset now)
        {
            lock (_lock)
            {
                return now < _openUntil;
            }
        }

        public void Succeeded()
        {
            lock (_lock)
            {
                _failures = 0;
                _openUntil = default;
            }
        }

        /// <summary>Counts a failed delivery; true when this failure opened the breaker.</summary>
        public bool Failed(DateTimeOffset now, int threshold, TimeSpan open)
        {
            lock (_lock)
            {
                if (++_failures < threshold || now < _openUntil)
                {
                    return false;
                }

                _openUntil = now + open;
                return true;
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "http action: circuit opened for {Endpoint}; deliveries to it fail at once for {Open}")]
    private static partial void LogBreakerOpened(ILogger logger, string endpoint, TimeSpan open);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rule {RuleName}: the error action of a failed http delivery failed")]
    private static partial void LogErrorActionFailed(ILogger logger, Exception exception, string ruleName);
}
