import ArgumentParser
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import QRLoginServer

/// `qrlogin serve`: runs the login server. Every option has an environment variable; an
/// option given on the command line wins. Parsing and checking the values is
/// ``ServerConfiguration/resolve(options:environment:)``'s job; a value it refuses ends the
/// process with exit code 64 and its message.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the QRLogin server (embedded SQLite by default).",
        discussion: """
        Environment variables: QRLOGIN_HOST, QRLOGIN_PORT, QRLOGIN_DATABASE, QRLOGIN_PUBLIC_URL,
        QRLOGIN_RATE_LIMITS (on|off), QRLOGIN_TRUSTED_PROXIES (comma-separated IPs),
        QRLOGIN_REQUEST_TTL, QRLOGIN_TICKET_TTL, QRLOGIN_TOKEN_TTL, QRLOGIN_PROOF_SKEW (seconds),
        QRLOGIN_BCRYPT_COST, QRLOGIN_LOG_LEVEL, QRLOGIN_LOG_FORMAT (text|json), QRLOGIN_METRICS_PORT, QRLOGIN_METRICS_HOST, QRLOGIN_RETENTION, QRLOGIN_CLEANUP_INTERVAL, QRLOGIN_IDLE_TIMEOUT (seconds), QRLOGIN_DPOP_NONCES (on|off),
        QRLOGIN_DEVICE_INTERVAL, QRLOGIN_DEVICE_CODE_TTL, QRLOGIN_OAUTH_TOKEN_TTL (seconds), QRLOGIN_CLIENTS (file).
        """
    )

    @Option(help: "Address to listen on. [env: QRLOGIN_HOST] (default: 127.0.0.1)")
    var host: String?

    @Option(help: "Port to listen on. [env: QRLOGIN_PORT] (default: 8080)")
    var port: Int?

    @Option(help: "SQLite database file, :memory:, or postgres://USER@HOST[:PORT]/DB for several instances (password: PGPASSWORD, or the whole URL in QRLOGIN_DATABASE). [env: QRLOGIN_DATABASE] (default: qrlogin.sqlite)")
    var database: String?

    @Option(name: .customLong("database-timeout"), help: "Seconds a PostgreSQL call may take before the request fails with 503. [env: QRLOGIN_DATABASE_TIMEOUT] (default: 5)")
    var databaseTimeout: Int?

    @Option(name: .customLong("public-url"), help: "URL clients use to reach this server; QR codes and proofs use it. [env: QRLOGIN_PUBLIC_URL] (default: http://HOST:PORT)")
    var publicURL: String?

    @Option(name: .customLong("rate-limits"), help: "Per-IP rate limits: on or off. [env: QRLOGIN_RATE_LIMITS] (default: on)")
    var rateLimits: Switch?

    @Option(name: .customLong("trusted-proxy"), help: "A proxy IP whose X-Forwarded-For is believed; repeatable. [env: QRLOGIN_TRUSTED_PROXIES]")
    var trustedProxies: [String] = []

    @Option(name: .customLong("request-ttl"), help: "Seconds a login request waits for a scan. [env: QRLOGIN_REQUEST_TTL] (default: 120)")
    var requestTTL: Int?

    @Option(name: .customLong("ticket-ttl"), help: "Seconds a scan ticket stays usable. [env: QRLOGIN_TICKET_TTL] (default: 60)")
    var ticketTTL: Int?

    @Option(name: .customLong("token-ttl"), help: "Seconds an access token works. [env: QRLOGIN_TOKEN_TTL] (default: 2592000, 30 days)")
    var tokenTTL: Int?

    @Option(name: .customLong("proof-skew"), help: "Seconds a DPoP proof's iat may differ from the server clock. [env: QRLOGIN_PROOF_SKEW] (default: 60)")
    var proofSkew: Int?

    @Option(name: .customLong("bcrypt-cost"), help: "bcrypt cost for password hashes, 4 to 31. [env: QRLOGIN_BCRYPT_COST] (default: 12)")
    var bcryptCost: Int?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. [env: QRLOGIN_LOG_LEVEL] (default: info)")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "text, or json for one JSON object per line. [env: QRLOGIN_LOG_FORMAT] (default: text)")
    var logFormat: String?

    @Option(name: .customLong("metrics-port"), help: "Serve Prometheus metrics at GET /metrics on this port (a listener of its own); none are collected without it. [env: QRLOGIN_METRICS_PORT]")
    var metricsPort: Int?

    @Option(name: .customLong("metrics-host"), help: "Address the metrics listener binds to. [env: QRLOGIN_METRICS_HOST] (default: 127.0.0.1)")
    var metricsHost: String?

    @Option(name: .customLong("retention"), help: "Seconds ended records are kept before the cleanup deletes them: expired login requests, expired or revoked tokens, expired codes and sessions. [env: QRLOGIN_RETENTION] (default: 3600)")
    var retention: Int?

    @Option(name: .customLong("cleanup-interval"), help: "Seconds between cleanup passes. [env: QRLOGIN_CLEANUP_INTERVAL] (default: 300)")
    var cleanupInterval: Int?

    @Option(name: .customLong("idle-timeout"), help: "Seconds a connection may wait between requests before it is closed; streams are never closed for it. [env: QRLOGIN_IDLE_TIMEOUT] (default: 75)")
    var idleTimeout: Int?

    @Option(name: .customLong("dpop-nonces"), help: "Require server-provided DPoP nonces at the OAuth endpoints: on or off. [env: QRLOGIN_DPOP_NONCES] (default: off)")
    var dpopNonces: Switch?

    @Option(name: .customLong("device-interval"), help: "Seconds a device waits between token polls, 1 to 60. [env: QRLOGIN_DEVICE_INTERVAL] (default: 5)")
    var deviceInterval: Int?

    @Option(name: .customLong("device-code-ttl"), help: "Seconds a device code and its user code work. [env: QRLOGIN_DEVICE_CODE_TTL] (default: 600)")
    var deviceCodeTTL: Int?

    @Option(name: .customLong("oauth-token-ttl"), help: "Seconds an OAuth access token works. [env: QRLOGIN_OAUTH_TOKEN_TTL] (default: 3600)")
    var oauthTokenTTL: Int?

    @Option(name: .customLong("client-file"), help: "JSON file of OAuth clients to register at start. [env: QRLOGIN_CLIENTS]")
    var clientFile: String?

    enum Switch: String, ExpressibleByArgument {
        case on, off
    }

    /// The options as given on the command line.
    var options: ServeOptions {
        ServeOptions(
            host: host, port: port, database: database, publicURL: publicURL, rateLimits: rateLimits.map { $0 == .on },
            trustedProxies: trustedProxies, requestTTL: requestTTL, ticketTTL: ticketTTL, tokenTTL: tokenTTL,
            proofSkew: proofSkew, bcryptCost: bcryptCost, logLevel: logLevel, idleTimeout: idleTimeout, databaseTimeout: databaseTimeout,
            dpopNonces: dpopNonces.map { $0 == .on }, deviceInterval: deviceInterval, deviceCodeTTL: deviceCodeTTL,
            oauthTokenTTL: oauthTokenTTL, clientFile: clientFile, logFormat: logFormat,
            metricsPort: metricsPort, metricsHost: metricsHost, retention: retention, cleanupInterval: cleanupInterval
        )
    }

    /// The configuration from options, environment and defaults; a refused value becomes a
    /// `ValidationError`, which ends the process with exit code 64 and the message.
    func resolvedConfiguration() throws -> ServerConfiguration {
        do {
            return try ServerConfiguration.resolve(options: options, environment: ProcessInfo.processInfo.environment)
        } catch {
            throw ValidationError(error.message)
        }
    }

    /// Checked here, not only in `run()`, so the error comes with `serve`'s usage.
    func validate() throws {
        _ = try resolvedConfiguration()
    }

    func run() async throws {
        let config = try resolvedConfiguration()
        // Swift concurrency runs on NIO's event loops (the group Hummingbird serves on), so a
        // request's handler runs on its connection's loop instead of hopping to the cooperative
        // pool and back (BENCHMARKS.md). The SQLite store blocks its caller for tens of
        // microseconds, which a loop can afford; WAL checkpoints, which fsync, have their own
        // thread. Installed before anything else runs; a no-op if it cannot be.
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        // Before the first logger is made: every later Logger, the libraries' too, writes with it.
        switch config.logFormat {
        case .json: LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        case .text: LoggingSystem.bootstrap { label in TextLogHandler(label: label) }
        }
        var logger = Logger(label: "qrlogin")
        logger.logLevel = config.logLevel
        logger.info("starting", metadata: [
            "qrlogin.address": "\(config.host):\(config.port)", "qrlogin.public_url": "\(config.publicBaseURL)",
            "qrlogin.database": "\(config.databaseForLogs)", "qrlogin.rate_limits": "\(config.rateLimits.isEmpty ? "off" : "on")",
        ])
        let app = try await buildApplication(configuration: config, logger: logger)
        try await app.runService()
    }
}
