using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using MQTTnet.AspNetCore;
using MQTTnet.Diagnostics.Logger;
using MQTTnet.Server;
using OrleansIot.Gateway.Http;
using OrleansIot.Grains.Abstractions;
using OrleansIot.Gateway.Mqtt;
using OrleansIot.Gateway.Routing;
using OrleansIot.Gateway.Telemetry;

namespace OrleansIot.Gateway.Hosting;

/// <summary>Composes the gateway (MQTT over TCP and WebSockets, HTTP API) into a web host next to the silo.</summary>
public static partial class IotGatewayHosting
{
    /// <summary>
    /// Adds the gateway. Call after <c>UseOrleans</c>: hosted services start in registration order and stop in
    /// reverse, so the silo is up before devices connect and stays up until their disconnects are recorded.
    /// </summary>
    public static WebApplicationBuilder AddIotGateway(this WebApplicationBuilder builder)
    {
        ArgumentNullException.ThrowIfNull(builder);
        MqttnetInternals.Verify();   // a different MQTTnet stops the node here, saying what it lacks
        var configuration = builder.Configuration;
        var node = Settings.Bind<NodeOptions>(configuration, NodeOptions.SectionName);
        var mqtt = Settings.Bind<MqttOptions>(configuration, MqttOptions.SectionName);
        var http = Settings.Bind<HttpOptions>(configuration, HttpOptions.SectionName);
        var https = Settings.Bind<HttpsOptions>(configuration, HttpsOptions.SectionName);
        var tls = Settings.Bind<TlsOptions>(configuration, TlsOptions.SectionName);
        var metrics = Settings.Bind<MetricsOptions>(configuration, MetricsOptions.SectionName);
        var certificate = tls.Enabled && tls.HasFile ? ServerCertificate.Load(tls, TimeProvider.System.GetUtcNow()) : null;   // composition: no clock service yet
        var services = builder.Services;

        // The start order is the registration order (hosted services start in it and stop in reverse), so it is
        // spelled out here, by concern, and tested (GatewayCompositionTests):
        AddNodeBasics(services, node, mqtt, http, https, tls);
        AddTelemetryAndPresence(services);            // stop after the MQTT server: the shutdown's publishes and disconnects are written
        AddClusterRouting(services);                  // the router, then the sessions it routes to
        AddDeviceSecurity(services, certificate);     // authenticators, access changes, the server certificate
        AddHttpApi(services);                         // one convention, access from endpoint metadata, OpenAPI
        services.AddSingleton(Options.Create(metrics));
        services.AddObservability(metrics);           // /metrics, /healthz, /readyz
        AddArtifacts(services, node, http);
        AddMqttBroker(services, mqtt);                // last: devices connect once everything above is up
        services.AddHostedService<ListenerBanner>();

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            Listen(kestrel, node.BindAddress, mqtt.Port, listen => listen.UseTruncatedPacketGuard().UseConnectionHandler<Mqtt.Transport.MqttTransportHandler>());
            Listen(kestrel, node.BindAddress, http.Port, listen => listen.Protocols = HttpProtocols.Http1);
            if (tls.Enabled)
            {
                // TLS terminated by Kestrel, so MQTTnet sees plain MQTT; the client certificate reaches
                // ValidatingConnectionEventArgs.ClientCertificate (and HttpContext.Connection for secure WebSockets).
                void Tls(ListenOptions listen, Security.TlsListener kind) => listen.UseHttps(new TlsHandshakeCallbackOptions
                {
                    OnConnection = context => kestrel.ApplicationServices.GetRequiredService<Security.ServerCertificateSource>().OnConnectionAsync(context, kind),
                });
                Listen(kestrel, node.BindAddress, mqtt.TlsPort, listen =>
                {
                    Tls(listen, Security.TlsListener.Mqtt);
                    listen.UseTruncatedPacketGuard().UseConnectionHandler<Mqtt.Transport.MqttTransportHandler>();
                });
                Listen(kestrel, node.BindAddress, https.Port, listen =>
                {
                    listen.Protocols = HttpProtocols.Http1AndHttp2;
                    Tls(listen, Security.TlsListener.Https);
                });
                if (tls.MultiplexPort != 0)
                {
                    Listen(kestrel, node.BindAddress, tls.MultiplexPort, listen =>
                    {
                        listen.Protocols = HttpProtocols.Http1AndHttp2;
                        Tls(listen, Security.TlsListener.Multiplexed);
                        // After the handshake: MQTT's ALPN goes to the MQTT handler, everything else on to HTTP.
                        listen.Use(next =>
                        {
                            var mqttHandler = new ConnectionBuilder(listen.ApplicationServices)
                                .UseTruncatedPacketGuard()
                                .UseConnectionHandler<Mqtt.Transport.MqttTransportHandler>()
                                .Build();
                            return connection => Security.Alpn.IsMqtt(connection.Features.Get<ITlsApplicationProtocolFeature>()?.ApplicationProtocol ?? default)
                                ? mqttHandler(connection)
                                : next(connection);
                        });
                    });
                }
            }
        });
        return builder;
    }

    private static void AddNodeBasics(IServiceCollection services, NodeOptions node, MqttOptions mqtt, HttpOptions http, HttpsOptions https, TlsOptions tls)
    {
        services.AddValidatedOptions<AuthOptions>(AuthOptions.SectionName);
        services.AddValidatedOptions<DashboardAccessOptions>(DashboardAccessOptions.SectionName);
        services.AddValidatedOptions<UsageOptions>(UsageOptions.SectionName);
        services.AddValidatedOptions<TelemetryOptions>(TelemetryOptions.SectionName);
        services.AddValidatedOptions<LimitsOptions>(LimitsOptions.SectionName);
        services.AddValidatedOptions<Grains.Abstractions.Registry.RegistryOptions>(Grains.Abstractions.Registry.RegistryOptions.SectionName);
        services.AddSingleton(Options.Create(mqtt));
        services.AddSingleton(Options.Create(http));
        services.AddSingleton(Options.Create(https));
        services.AddSingleton(Options.Create(tls));
        services.AddSingleton(Options.Create(node));
        services.AddSingleton(new NodeIdentity(node.NodeName ?? $"{Environment.MachineName}:{http.Port}"));
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton<GatewayMetrics>();
        services.AddSingleton<Limits>();
        services.AddSingleton<ConnectThrottle>();
    }

    private static void AddTelemetryAndPresence(IServiceCollection services)
    {
        services.AddSingleton<TelemetryPublisher>();
        services.AddHostedService(sp => sp.GetRequiredService<TelemetryPublisher>());
        services.AddSingleton<RuleTopics>();
        services.AddHostedService(sp => sp.GetRequiredService<RuleTopics>());
        services.AddSingleton<LiveConnections>();
        services.AddHostedService(sp => sp.GetRequiredService<LiveConnections>());
        services.AddSingleton<LifecycleEvents>();
    }

    private static void AddClusterRouting(IServiceCollection services)
    {
        services.AddValidatedOptions<RoutingOptions>(RoutingOptions.SectionName);
        services.AddSingleton<TopicWatches>();
        services.AddSingleton<LocalSubscribers>();
        services.AddSingleton<ClusterRouter>();
        services.AddSingleton<BrokerPublisher>();
        services.AddSingleton<Grains.Abstractions.Routing.IBrokerPublisher>(sp => sp.GetRequiredService<BrokerPublisher>());
        services.AddHostedService(sp => sp.GetRequiredService<ClusterRouter>());
        services.AddHostedService<NodeStatsReporter>();
        services.AddValidatedOptions<Sessions.SessionOptions>(Sessions.SessionOptions.SectionName);
        services.AddSingleton<Sessions.WillPublisher>();
        services.AddSingleton<Sessions.HostList>();
        services.AddSingleton<Sessions.SessionHost>();
        services.AddSingleton<IOfflineSessions>(sp => sp.GetRequiredService<Sessions.SessionHost>());
        services.AddSingleton<RouteNodeEndpoint>();
        services.AddHostedService(sp => sp.GetRequiredService<Sessions.SessionHost>());
        services.AddSingleton<Retained.RetainedMessages>();
        services.TryAddSingleton<Retained.IRetainedMessageStore, Retained.InMemoryRetainedMessageStore>();
    }

    private static void AddDeviceSecurity(IServiceCollection services, System.Security.Cryptography.X509Certificates.X509Certificate2? certificate)
    {
        services.AddSingleton<Security.AuditTrail>();
        services.AddSingleton<Security.DeviceAuthenticator>();
        services.AddSingleton<Security.ApiKeyAuthenticator>();
        services.AddSingleton<Security.SigV4Authenticator>();
        services.AddHostedService(sp => sp.GetRequiredService<Security.ApiKeyAuthenticator>());
        services.AddSingleton<Security.AccessChanges>();
        services.AddSingleton<Grains.Abstractions.Policies.IAccessChangeNotifier>(sp => sp.GetRequiredService<Security.AccessChanges>());
        services.AddSingleton(sp => new Security.ServerCertificateSource(
            sp.GetRequiredService<IOptions<TlsOptions>>(), certificate, sp.GetRequiredService<IGrainFactory>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetRequiredService<ILogger<Security.ServerCertificateSource>>()));
        services.AddHostedService(sp => sp.GetRequiredService<Security.ServerCertificateSource>());
    }

    /// <summary>Artifact bytes in a directory unless the silo stores them elsewhere (PostgreSQL); download URLs point at this node's HTTP listener unless configured.</summary>
    private static void AddArtifacts(IServiceCollection services, NodeOptions node, HttpOptions http)
    {
        services.TryAddSingleton<Grains.Abstractions.Artifacts.IArtifactBlobStore, Artifacts.FileArtifactStore>();
        var host = node.BindAddress switch
        {
            "localhost" => "localhost",
            "*" => Environment.MachineName,
            var address when IPAddress.TryParse(address, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 => $"[{address}]",
            var address => address,
        };
        services.PostConfigure<Grains.Abstractions.Artifacts.ArtifactOptions>(o => o.BaseUrl ??= $"http://{host}:{http.Port}");
    }

    private static void AddHttpApi(IServiceCollection services)
    {
        Http.ApiAccess.AddApiAccess(services);
        Http.ApiReference.AddApiReference(services);
        // Binding failures are thrown (not answered with a bare 400), so ApiErrors answers them as AWS does.
        services.Configure<Microsoft.AspNetCore.Routing.RouteHandlerOptions>(o => o.ThrowOnBadRequest = true);
        // JSON as people and AWS write it: quotes, '+' and '<' as themselves (a policy document is JSON inside a string).
        services.ConfigureHttpJsonOptions(o => o.SerializerOptions.Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping);
        // Every error carries AWS's exception name where AWS's SDKs read it first, next to the problem document's code.
        services.AddProblemDetails(o => o.CustomizeProblemDetails = c =>
        {
            if (c.ProblemDetails.Extensions.TryGetValue("code", out var code) && code is string name)
            {
                c.HttpContext.Response.Headers["x-amzn-ErrorType"] = name;
            }
        });
        services.AddExceptionHandler<ApiErrors>();
    }

    private static void AddMqttBroker(IServiceCollection services, MqttOptions mqtt)
    {
        services.AddSingleton<SubscriptionTracker>();
        services.AddSingleton<ShadowTopicHandler>();
        services.AddSingleton<ProvisioningTopicHandler>();
        services.AddSingleton<JobsTopicHandler>();
        services.AddSingleton<Jobs.DeviceJobs>();
        services.AddSingleton<SubscriptionInterceptor>();
        services.AddSingleton<InboundPackets>();
        services.AddSingleton<ConnectionValidator>();
        services.AddSingleton<ClientConnectedHandler>();
        services.AddSingleton<ClientDisconnectedHandler>();
        services.AddSingleton<Sessions.EndKeeper>();
        services.AddHostedService(sp => sp.GetRequiredService<Sessions.EndKeeper>());
        services.AddSingleton<PublishInterceptor>();
        services.AddSingleton<RetainedOnSubscribe>();
        services.AddSingleton<IMqttNetLogger, MqttLogBridge>();
        var serverOptions = new MqttServerOptionsBuilder()
            .WithoutDefaultEndpoint()   // Kestrel owns the sockets: TCP, TLS and WebSockets share one host
            .WithMaxPendingMessagesPerClient(mqtt.MaxQueuedMessagesPerClient)   // MQTTnet's queue now carries acknowledgements only
            .Build();
        // Each connection keeps one encode buffer of this size (MQTTnet's default: 4 KiB); it grows for larger
        // packets and is cut back above WriterBufferSizeMax. Small, because most connections are idle devices.
        serverOptions.WriterBufferSize = mqtt.WriterBufferBytes;
        services.AddHostedMqttServer(serverOptions);
        services.AddHostedService<MqttStopsFirst>();
        // Our transport instead of MQTTnet.AspNetCore's MqttConnectionHandler: the same Kestrel pipes, plus the
        // batched writes of the connections' outboxes.
        services.AddSingleton<Mqtt.Transport.MqttTransportHandler>();
        services.AddSingleton<IMqttServerAdapter>(sp => sp.GetRequiredService<Mqtt.Transport.MqttTransportHandler>());
        services.AddConnections();
    }

    /// <summary>Maps the HTTP surface and attaches the MQTT event handlers.</summary>
    public static WebApplication MapIotGateway(this WebApplication app)
    {
        ArgumentNullException.ThrowIfNull(app);
        var mqtt = app.Services.GetRequiredService<IOptions<MqttOptions>>().Value;

        // Routing first, so the audit log knows the operation even when the exception handler answers.
        app.UseRouting();
        app.UseAuditLog();
        app.UseExceptionHandler();
        app.UseStatusCodePages();
        app.UseAuthentication();
        app.UseAuthorization();
        app.UseWebSockets();
        // MapMqtt of MQTTnet.AspNetCore, with the truncated-packet guard in front of the handler.
        var webSocketOptions = new Microsoft.AspNetCore.Http.Connections.HttpConnectionDispatcherOptions();
        webSocketOptions.WebSockets.SubProtocolSelector = MqttSubProtocolSelector.SelectSubProtocol;
        app.MapConnections(
            mqtt.WebSocketPath,
            webSocketOptions,
            connection => connection.UseTruncatedPacketGuard().UseConnectionHandler<Mqtt.Transport.MqttTransportHandler>());
        app.MapHealthApi();
        app.MapObservability();
        app.MapConsole();
        app.MapApiReference();

        // The data plane at the root, as AWS's (devices may call it with their certificates) ...
        app.MapShadowApi();
        app.MapPublishApi();
        app.MapJobsDataApi();
        app.MapArtifactDownloads();

        // ... and the control plane under one root group.
        var api = app.MapGroup("/api");
        api.MapRegistryApi();
        api.MapNamedShadowsApi();
        api.MapRulesApi();
        api.MapAnalyticsApi();
        api.MapQueuesApi();
        api.MapPoliciesApi();
        api.MapCertificatesApi();
        api.MapAuditApi();
        api.MapApiKeysApi();
        api.MapProvisioningApi();
        api.MapConnectionsApi();
        api.MapRetainedApi();
        api.MapJobsApi();
        api.MapArtifactsApi();
        api.MapFleetIndexApi();
        api.MapUsageApi();
        api.MapAlarmsApi();
        api.MapTopicWatchApi();
        api.MapDashboardSessionApi();
        app.MapFallback(() => Problems.NotFound("ResourceNotFoundException", "No such route."));

        app.UseMqttServer(server =>
        {
            var services = app.Services;
            server.ValidatingConnectionAsync += services.GetRequiredService<ConnectionValidator>().HandleAsync;
            server.ClientConnectedAsync += services.GetRequiredService<ClientConnectedHandler>().HandleAsync;
            server.ClientDisconnectedAsync += services.GetRequiredService<ClientDisconnectedHandler>().HandleAsync;
            server.InterceptingPublishAsync += services.GetRequiredService<PublishInterceptor>().HandleAsync;
            server.InterceptingSubscriptionAsync += services.GetRequiredService<SubscriptionInterceptor>().HandleAsync;
            server.InterceptingClientEnqueueAsync += services.GetRequiredService<RetainedOnSubscribe>().HandleAsync;
            server.InterceptingInboundPacketAsync += services.GetRequiredService<InboundPackets>().InterceptAsync;
            server.InterceptingOutboundPacketAsync += InboundPackets.InterceptOutboundAsync;
            server.InterceptingOutboundPacketAsync += services.GetRequiredService<Sessions.SessionHost>().InterceptOutboundAsync;
            var subscriptions = services.GetRequiredService<SubscriptionTracker>();
            server.ClientSubscribedTopicAsync += subscriptions.SubscribedAsync;
            server.ClientUnsubscribedTopicAsync += subscriptions.UnsubscribedAsync;
            server.SessionDeletedAsync += subscriptions.SessionDeletedAsync;
            server.LoadingRetainedMessageAsync += services.GetRequiredService<Retained.RetainedMessages>().LoadingAsync;
        });
        return app;
    }

    private static void Listen(KestrelServerOptions kestrel, string bindAddress, int port, Action<ListenOptions> configure)
    {
        switch (bindAddress)
        {
            case "localhost":
                kestrel.ListenLocalhost(port, configure);
                break;
            case "*":
                kestrel.ListenAnyIP(port, configure);
                break;
            default:
                kestrel.Listen(IPAddress.Parse(bindAddress), port, configure);
                break;
        }
    }

    /// <summary>Says where the node listens once it does.</summary>
    private sealed partial class ListenerBanner(
        IHostApplicationLifetime lifetime,
        IOptions<NodeOptions> node,
        IOptions<MqttOptions> mqtt,
        IOptions<HttpOptions> http,
        IOptions<HttpsOptions> https,
        IOptions<TlsOptions> tls,
        IOptions<AuthOptions> auth,
        NodeIdentity identity,
        ILogger<ListenerBanner> logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            lifetime.ApplicationStarted.Register(() =>
            {
                var host = node.Value.BindAddress == "*" ? "0.0.0.0" : node.Value.BindAddress;
                var mqttUrl = $"mqtt://{host}:{mqtt.Value.Port}";
                var webSocketUrl = $"ws://{host}:{http.Value.Port}{mqtt.Value.WebSocketPath}";
                var httpUrl = $"http://{host}:{http.Value.Port}";
                LogListening(logger, identity.Name, mqttUrl, webSocketUrl, httpUrl);
                if (tls.Value.Enabled)
                {
                    var mqttsUrl = $"mqtts://{host}:{mqtt.Value.TlsPort}";
                    var wssUrl = $"wss://{host}:{https.Value.Port}{mqtt.Value.WebSocketPath}";
                    var httpsUrl = $"https://{host}:{https.Value.Port}";
                    LogListeningTls(logger, mqttsUrl, wssUrl, httpsUrl);
                    if (tls.Value.MultiplexPort != 0)
                    {
                        LogListeningMultiplexed(logger, host, tls.Value.MultiplexPort);
                    }
                }
                else
                {
                    LogNoTls(logger);
                }

                var governedBy = string.IsNullOrWhiteSpace(auth.Value.DevelopmentPolicy) ? "everything allowed" : $"the policy '{auth.Value.DevelopmentPolicy}' (Iot:Auth:DevelopmentPolicy)";
                if (auth.Value.AllowAnonymous == true)
                {
                    LogDevelopmentAccess(logger, mqttUrl, webSocketUrl, governedBy);
                }

                if (auth.Value.Users.Count > 0)
                {
                    LogDevelopmentUsers(logger, auth.Value.Users.Count, mqttUrl, governedBy);
                }
            });
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Node {Node} listening: MQTT 3.1.1/5.0 on {Mqtt}, MQTT over WebSockets on {WebSocket}, HTTP API on {Http}")]
        private static partial void LogListening(ILogger logger, string node, string mqtt, string webSocket, string http);

        [LoggerMessage(EventId = 1002, Level = LogLevel.Information, Message = "TLS listening: MQTT on {Mqtts}, MQTT over secure WebSockets on {Wss}, HTTPS API on {Https}")]
        private static partial void LogListeningTls(ILogger logger, string mqtts, string wss, string https);

        [LoggerMessage(EventId = 1003, Level = LogLevel.Information, Message = "TLS listening on {Host}:{Port} for MQTT (ALPN x-amzn-mqtt-ca or mqtt) and HTTPS (any other ALPN, or none), as AWS's port 443")]
        private static partial void LogListeningMultiplexed(ILogger logger, string host, int port);

        [LoggerMessage(EventId = 1004, Level = LogLevel.Warning, Message = "Iot:Tls:Enabled is false: the TLS listeners (MQTT 8883, HTTPS 8443) are closed, so no device can authenticate with a certificate")]
        private static partial void LogNoTls(ILogger logger);

        [LoggerMessage(EventId = 1005, Level = LogLevel.Warning, Message = "DEVELOPMENT ACCESS: devices connect without credentials on {Mqtt} and {WebSocket} under development access ({GovernedBy}). Set Iot:Auth:AllowAnonymous=false for a real deployment")]
        private static partial void LogDevelopmentAccess(ILogger logger, string mqtt, string webSocket, string governedBy);

        [LoggerMessage(EventId = 1006, Level = LogLevel.Warning, Message = "DEVELOPMENT USERS: {Count} user name(s) from Iot:Auth:Users connect on {Mqtt} under development access ({GovernedBy})")]
        private static partial void LogDevelopmentUsers(ILogger logger, int count, string mqtt, string governedBy);
    }

    /// <summary>
    /// On shutdown the MQTT server stops before anything else, in the host's "stopping" phase: Kestrel (whose web host
    /// service stops first of all hosted services) waits for its open connections, and the MQTT connections it carries
    /// end only when MQTTnet closes them, which its own hosted service would do later. Without this, a node with a
    /// connected device waited out the host's 30 s shutdown timeout and then crashed on the cancelled stop. MQTT 5
    /// clients get DISCONNECT 0x8B (server shutting down) and reconnect elsewhere; the disconnects and the persistent
    /// sessions' hand-over are written while the silo still runs.
    /// </summary>
    private sealed class MqttStopsFirst(MQTTnet.Server.MqttServer mqtt) : IHostedLifecycleService
    {
        public Task StoppingAsync(CancellationToken cancellationToken) => mqtt.StopAsync(new MQTTnet.Server.MqttServerStopOptions());

        public Task StartingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

        public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}
