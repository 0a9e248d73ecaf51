import ArgumentParser
import Foundation
import Hummingbird
import Logging
import QRLoginServer

/// `qrlogin serve`: runs the login server. Every option has an environment variable; an
/// option given on the command line wins.
struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the QRLogin server (embedded SQLite by default).",
        discussion: """
        Environment variables: QRLOGIN_HOST, QRLOGIN_PORT, QRLOGIN_DATABASE, QRLOGIN_PUBLIC_URL,
        QRLOGIN_RATE_LIMITS (on|off), QRLOGIN_TRUSTED_PROXIES (comma-separated IPs),
        QRLOGIN_REQUEST_TTL, QRLOGIN_TICKET_TTL, QRLOGIN_TOKEN_TTL, QRLOGIN_PROOF_SKEW (seconds),
        QRLOGIN_BCRYPT_COST, QRLOGIN_LOG_LEVEL.
        """
    )

    @Option(help: "Address to listen on. [env: QRLOGIN_HOST] (default: 127.0.0.1)")
    var host: String?

    @Option(help: "Port to listen on. [env: QRLOGIN_PORT] (default: 8080)")
    var port: Int?

    @Option(help: "SQLite database file, or :memory:. [env: QRLOGIN_DATABASE] (default: qrlogin.sqlite)")
    var database: String?

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

    enum Switch: String, ExpressibleByArgument {
        case on, off
    }

    /// The configuration from options, then environment, then defaults.
    func makeConfiguration(environment: [String: String] = ProcessInfo.processInfo.environment) throws -> ServerConfiguration {
        var config = ServerConfiguration()
        func env(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        func int(_ option: Int?, _ name: String, _ range: ClosedRange<Int>) throws -> Int? {
            if let option {
                guard range.contains(option) else { throw ValidationError("\(name) must be \(range.lowerBound) to \(range.upperBound)") }
                return option
            }
            guard let text = env(name) else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw ValidationError("\(name)=\(text) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }
        config.host = host ?? env("QRLOGIN_HOST") ?? config.host
        config.port = try int(port, "QRLOGIN_PORT", 0...65535) ?? config.port
        config.database = database ?? env("QRLOGIN_DATABASE") ?? config.database
        config.publicURL = publicURL ?? env("QRLOGIN_PUBLIC_URL")
        if let url = config.publicURL {
            guard let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme?.lowercased() ?? ""), parsed.host != nil,
                  parsed.query == nil, parsed.fragment == nil
            else { throw ValidationError("public URL must be an http(s) URL without query, e.g. https://login.example.com") }
        }
        let limits = try rateLimits ?? env("QRLOGIN_RATE_LIMITS").map { text in
            guard let value = Switch(rawValue: text.lowercased()) else { throw ValidationError("QRLOGIN_RATE_LIMITS must be on or off") }
            return value
        }
        if limits == .off { config.rateLimits = [:] }
        let proxies = trustedProxies.isEmpty ? (env("QRLOGIN_TRUSTED_PROXIES")?.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } ?? []) : trustedProxies
        config.trustedProxies = proxies.filter { !$0.isEmpty }
        if let value = try int(requestTTL, "QRLOGIN_REQUEST_TTL", 10...3600) { config.flow.requestTTL = TimeInterval(value) }
        if let value = try int(ticketTTL, "QRLOGIN_TICKET_TTL", 10...3600) { config.flow.ticketTTL = TimeInterval(value) }
        if let value = try int(tokenTTL, "QRLOGIN_TOKEN_TTL", 60...(366 * 24 * 3600)) { config.flow.tokenTTL = TimeInterval(value) }
        if let value = try int(proofSkew, "QRLOGIN_PROOF_SKEW", 1...600) { config.flow.proofSkew = TimeInterval(value) }
        if let value = try int(bcryptCost, "QRLOGIN_BCRYPT_COST", 4...31) { config.flow.bcryptCost = UInt8(value) }
        return config
    }

    func run() async throws {
        let config = try makeConfiguration()
        let levelName = logLevel ?? ProcessInfo.processInfo.environment["QRLOGIN_LOG_LEVEL"] ?? "info"
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError("log level must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var logger = Logger(label: "qrlogin")
        logger.logLevel = level
        logger.info("starting", metadata: [
            "qrlogin.address": "\(config.host):\(config.port)", "qrlogin.public_url": "\(config.publicBaseURL)",
            "qrlogin.database": "\(config.database)", "qrlogin.rate_limits": "\(config.rateLimits.isEmpty ? "off" : "on")",
        ])
        let app = try await buildApplication(configuration: config, logger: logger)
        try await app.runService()
    }
}
