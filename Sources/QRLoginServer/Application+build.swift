import Foundation
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import QRLoginCore
import QRLoginOAuth
import QRLoginPostgres
import QRLoginSQLite
import ServiceLifecycle

/// The storage, clock, code sender and notifier a server runs with. Tests pass their own.
public struct ServerDependencies: Sendable {
    /// The store; nil opens the configured SQLite database.
    public var store: (any Store)?
    /// The clock.
    public var clock: any NowClock
    /// Where one-time codes go; nil writes them to the log.
    public var codeSender: (any OneTimeCodeSender)?
    /// Where changes of login requests are published to waiting PCs; nil: in this process.
    public var notifier: (any LoginEventNotifier)?
    /// The metrics to record; nil: a new set when the configuration has a metrics port, else none.
    public var metrics: ServerMetrics?
    /// Called once the HTTP server listens, with its channel (whose local address has the port).
    /// A server that cannot bind never calls it: its run throws instead.
    public var onServerRunning: @Sendable (any Channel) async -> Void

    /// Creates dependencies; by default SQLite per configuration, the system clock, the log
    /// sender and an in-process notifier.
    public init(
        store: (any Store)? = nil, clock: any NowClock = SystemClock(), codeSender: (any OneTimeCodeSender)? = nil,
        notifier: (any LoginEventNotifier)? = nil, metrics: ServerMetrics? = nil,
        onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
    ) {
        self.metrics = metrics
        self.onServerRunning = onServerRunning
        self.store = store
        self.clock = clock
        self.codeSender = codeSender
        self.notifier = notifier
    }
}

/// Builds the whole server: storage, the login service, routes and background services.
/// `@main` only parses configuration and runs what this returns.
public func buildApplication(
    configuration: ServerConfiguration,
    dependencies: ServerDependencies = ServerDependencies(),
    logger: Logger = Logger(label: "qrlogin")
) async throws -> some ApplicationProtocol {
    // The web UI's files come from the package resources; without them, fail before opening
    // anything, with the reason.
    let assets = try WebAssets.load()
    var store: any Store
    var services: [any Service] = []
    if let given = dependencies.store {
        store = given
    } else if PostgresURL.isPostgres(configuration.database) {
        let postgres = try await PostgresStore.open(url: configuration.database, timeout: .seconds(configuration.databaseTimeout), logger: logger)
        logger.info("using PostgreSQL", metadata: ["qrlogin.database": "\(postgres.configuration)"])
        store = postgres
        services.append(PostgresCloser(store: postgres))
    } else {
        let sqlite = try await SQLiteStore.open(path: configuration.database, logger: logger)
        store = sqlite
        services.append(SQLiteCloser(store: sqlite))
    }
    let shared = try await SharedState.make(for: store, given: dependencies.notifier, logger: logger)
    let notifier = shared.notifier
    let metrics = dependencies.metrics ?? configuration.metricsPort.map { _ in ServerMetrics() }
    // Wrapped after the shared state is chosen, which looks at the store's kind.
    if let metrics { store = MeasuredStore(store, metrics: metrics, clock: dependencies.clock) }
    // A PostgreSQL listener runs as a service whether the server made it or was given it.
    if let listener = shared.listener { services.append(NotifierService(notifier: listener)) }
    var verifier = DPoPVerifier(
        publicBaseURL: configuration.publicBaseURL, maxClockSkew: configuration.flow.proofSkew,
        replayCache: shared.replayCache, clock: dependencies.clock
    )
    if let metrics { verifier.onRefusal = { metrics.proofRefused($0) } }
    let service = LoginService(
        store: store, verifier: verifier, notifier: notifier, clock: dependencies.clock, settings: configuration.flow,
        codeSender: dependencies.codeSender ?? LogCodeSender(logger: logger), pickups: shared.pickups, codeKey: shared.codeKey,
        metrics: metrics
    )
    if let file = configuration.clientFile {
        let count = try await ClientFile.load(path: file, into: store, clock: dependencies.clock)
        logger.info("registered clients from file", metadata: ["qrlogin.clients": "\(count)", "qrlogin.client_file": "\(file)"])
    }
    let keyring = Keyring(store: store, clock: dependencies.clock, tokenLifetime: configuration.oauth.idTokenTTL)
    try await keyring.ensureKeys(logger: logger)
    let router = buildRouter(
        service: service, keyring: keyring, configuration: configuration, clock: dependencies.clock, assets: assets, shared: shared, metrics: metrics
    )
    if let metrics {
        services.append(ExpiryService(store: store, clock: dependencies.clock, interval: configuration.expiryInterval, logger: logger))
        if let port = configuration.metricsPort {
            services.append(MetricsListener.application(metrics: metrics, host: configuration.metricsHost, port: port, logger: logger))
        }
    }
    let serverName = "qrlogin"
    services.append(WaitTimerService(timer: service.waitTimer))
    services.append(CleanupService(
        store: store, clock: dependencies.clock, interval: configuration.cleanupInterval, retention: configuration.flow.retention,
        keyLifetime: configuration.oauth.idTokenTTL, sharedState: shared.cleanup, logger: logger
    ))

    let responder = router.buildResponder()
    let direct = DirectRoutes(
        responder: responder, paths: OAuthRoutes.directPaths, maxBody: FormBody.maxLength, serverName: serverName, logger: logger
    )
    // Last: services stop in reverse order, so this one waits for answers still under way
    // before the store closes.
    services.append(DirectAnswersService(routes: direct))
    return Application(
        responder: responder,
        // Idle keep-alive connections (and ones that never send a request) are closed, so they
        // cannot hold the server's memory forever; responses still being written are exempt.
        server: http1(
            configuration: .init(idleTimeout: configuration.idleTimeout > 0 ? .milliseconds(Int64(configuration.idleTimeout * 1000)) : nil),
            streams: EventStreams(service: service, serverName: serverName),
            direct: direct
        ),
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: serverName),
        services: services,
        onServerRunning: dependencies.onServerRunning,
        logger: logger
    )
}

/// Hummingbird's HTTP/1 server, with the PCs' event streams on connections of their own served
/// without a task each, and the OAuth endpoints answered from the channel handler
/// (``QRLoginHTTP1Channel``).
func http1(configuration: HTTP1Channel.Configuration, streams: EventStreams, direct: DirectRoutes) -> HTTPServerBuilder {
    HTTPServerBuilder { responder in
        QRLoginHTTP1Channel(http: HTTP1Channel(responder: responder, configuration: configuration), streams: streams, direct: direct)
    }
}

/// The router with every route of the v1 contract.
func buildRouter(
    service: LoginService, keyring: Keyring, configuration: ServerConfiguration, clock: any NowClock, assets: WebAssets, shared: SharedState,
    metrics: ServerMetrics? = nil
) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    if let metrics { router.add(middleware: RequestMetricsMiddleware(metrics: metrics)) }
    // Logs requests too (one layer instead of two: see ProblemMiddleware).
    router.add(middleware: ProblemMiddleware())
    let clients = ClientResolver(trustedProxies: configuration.trustedProxies)
    let limiter = RateLimiter(limits: configuration.rateLimits, clock: clock, buckets: shared.buckets, metrics: metrics)
    router.getAndHead("health") { request, context in
        _ = try await service.store.loginRequest(id: "health-check")
        return try HealthView(status: "ok", storage: "ok").response(from: request, context: context)
    }
    // For load balancers: 503 while the database is unreachable (or, with several instances,
    // while this one cannot hear the others' changes), so traffic goes elsewhere.
    router.getAndHead("health/ready") { request, context in
        try await shared.ready()
        return try HealthView(status: "ready", storage: "ok").response(from: request, context: context)
    }
    let oauth = OAuthService(
        login: service, settings: configuration.oauth, issuer: configuration.publicBaseURL,
        nonces: configuration.oauth.dpopNonces ? DPoPNonces(key: shared.nonceKey) : nil, keyring: keyring
    )
    let oidc = OIDCService(oauth: oauth)
    AccountRoutes(service: service, clients: clients, limiter: limiter).addRoutes(to: router)
    LoginRequestRoutes(service: service, clients: clients, limiter: limiter, publicBaseURL: configuration.publicBaseURL, oidc: oidc).addRoutes(to: router)
    WebRoutes(service: service, publicBaseURL: configuration.publicBaseURL, assets: assets).addRoutes(to: router)
    OAuthRoutes(oauth: oauth, oidc: oidc, clients: clients, limiter: limiter).addRoutes(to: router)
    GrantRoutes(oauth: oauth, clients: clients, limiter: limiter).addRoutes(to: router)
    OIDCRoutes(oidc: oidc, clients: clients, limiter: limiter, assets: assets).addRoutes(to: router)
    // Last: it wraps only what no route answers (a path's other methods get 405 and Allow).
    router.add(middleware: MethodNotAllowedMiddleware(allowed: AllowedMethods(router)))
    return router
}
