using System.Diagnostics;
using System.Net;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;

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
/// breaker: once <see cref="RulesOptions.HttpBreakerFailures"/> deliveries failed (after their retries) with none
/// succeeding in between (Polly's breaker at a failure ratio of 1 over the last minute), new and queued deliveries
/// fail at once (the error action runs) for <see cref="RulesOptions.HttpBreakerOpen"/>, then one delivery tries the
/// endpoint again. A full queue also fails the action at once. Retries and the breaker are Polly's (v8 resilience
/// pipelines, on the node's <see cref="TimeProvider"/>), as .NET users configure them elsewhere.
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
        if (endpoint.IsOpen)
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
                _endpoints[name] = endpoint = new Endpoint(name, _options.HttpQueueCapacity, _options.HttpConcurrency, Breaker(name));
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

    /// <summary>An endpoint's breaker: open after the configured number of failed deliveries with no success between.</summary>
    private (ResiliencePipeline<Attempt> Pipeline, CircuitBreakerStateProvider State) Breaker(string name)
    {
        var state = new CircuitBreakerStateProvider();
        var pipeline = new ResiliencePipelineBuilder<Attempt> { TimeProvider = _time }
        .AddCircuitBreaker(new CircuitBreakerStrategyOptions<Attempt>
        {
            StateProvider = state,
            FailureRatio = 1.0,
            MinimumThroughput = _options.HttpBreakerFailures,
            SamplingDuration = TimeSpan.FromMinutes(1),
            BreakDuration = _options.HttpBreakerOpen,
            ShouldHandle = args => ValueTask.FromResult(args.Outcome.Result?.Failure is not null || args.Outcome.Exception is not null and not OperationCanceledException),
            OnOpened = _ =>
            {
                LogBreakerOpened(_logger, name, _options.HttpBreakerOpen);
                return ValueTask.CompletedTask;
            },
        })
        .Build();
        return (pipeline, state);
    }

    /// <summary>
    /// Retries of one delivery: 5xx, 429, timeouts and connection errors, up to the action's <c>maxRetries</c>, with
    /// exponential backoff and jitter (100 ms, 200 ms, 400 ms … at most 5 s).
    /// </summary>
    private ResiliencePipeline<Attempt> Retries => _retries ??= new ResiliencePipelineBuilder<Attempt> { TimeProvider = _time }
        .AddRetry(new RetryStrategyOptions<Attempt>
        {
            MaxRetryAttempts = int.MaxValue,   // each action's own maxRetries decides (ShouldHandle)
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = TimeSpan.FromMilliseconds(100),
            MaxDelay = TimeSpan.FromSeconds(5),
            ShouldHandle = args => ValueTask.FromResult(
                args.Outcome.Result is { Retry: true } && args.AttemptNumber < args.Context.Properties.GetValue(MaxRetriesKey, 0)),
        })
        .Build();

    private static readonly ResiliencePropertyKey<int> MaxRetriesKey = new("iot.http.maxRetries");
    private ResiliencePipeline<Attempt>? _retries;

    /// <summary>One try's outcome: failed or not, and whether trying again may help.</summary>
    private sealed record Attempt(bool Retry, Exception? Failure);

    private async Task SendAsync(Endpoint endpoint, List<HttpDelivery> batch)
    {
        var first = batch[0];
        Exception? failure;
        var context = ResilienceContextPool.Shared.Get(_stopping.Token);
        try
        {
            context.Properties.Set(MaxRetriesKey, first.Settings.MaxRetries);
            // With batching on, always an array (also of one), so the receiver sees one shape.
            var body = first.Settings.MaxBatchSize > 1 ? JsonArray(batch) : first.Body;
            var outcome = await endpoint.Breaker.ExecuteAsync(
                static (ctx, state) => state.Self.Retries.ExecuteAsync(static async (_, s) => await s.Self.TryOnceAsync(s.First, s.Body), ctx, state),
                context,
                (Self: this, First: first, Body: body));
            failure = outcome.Failure;
        }
        catch (BrokenCircuitException)
        {
            failure = new HttpRequestException($"http: circuit open for {endpoint.Name}.");
        }
        finally
        {
            ResilienceContextPool.Shared.Return(context);
        }

        if (failure is null)
        {
            foreach (var delivery in batch)
            {
                RuleMetrics.Executed(delivery.RuleName, "HttpAction", delivery.Queued);
            }

            return;
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

    private async Task<Attempt> TryOnceAsync(HttpDelivery first, byte[] body)
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
                return new Attempt(false, null);
            }

            var retry = (int)response.StatusCode >= 500 || response.StatusCode == HttpStatusCode.TooManyRequests;
            return new Attempt(retry, new HttpRequestException($"http: {first.Url} answered {(int)response.StatusCode} {response.ReasonPhrase}.", null, response.StatusCode));
        }
        catch (OperationCanceledException) when (!_stopping.IsCancellationRequested)
        {
            return new Attempt(true, new TimeoutException($"http: {first.Url} did not answer within {first.Settings.Timeout.TotalMilliseconds} ms."));
        }
        catch (HttpRequestException ex)
        {
            return new Attempt(true, new HttpRequestException($"http: {first.Url}: {ex.Message}", ex));
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

    private sealed class Endpoint(string name, int capacity, int concurrency, (ResiliencePipeline<Attempt> Pipeline, CircuitBreakerStateProvider State) breaker)
    {
        public string Name { get; } = name;

        public Channel<HttpDelivery> Queue { get; } = Channel.CreateBounded<HttpDelivery>(new BoundedChannelOptions(capacity) { FullMode = BoundedChannelFullMode.Wait });

        public List<Task> Senders { get; } = [];

        public SemaphoreSlim InFlight { get; } = new(concurrency, concurrency);

        public ResiliencePipeline<Attempt> Breaker { get; } = breaker.Pipeline;

        /// <summary>Open: failing fast (a new delivery fails at once, before it is queued).</summary>
        public bool IsOpen => BreakerState.CircuitState is CircuitState.Open or CircuitState.Isolated;

        public CircuitBreakerStateProvider BreakerState { get; } = breaker.State;
    }

    [LoggerMessage(EventId = 2006, Level = LogLevel.Warning, Message = "http action: circuit opened for {Endpoint}; deliveries to it fail at once for {Open}")]
    private static partial void LogBreakerOpened(ILogger logger, string endpoint, TimeSpan open);

    [LoggerMessage(EventId = 2007, Level = LogLevel.Warning, Message = "Rule {RuleName}: the error action of a failed http delivery failed")]
    private static partial void LogErrorActionFailed(ILogger logger, Exception exception, string ruleName);
}
