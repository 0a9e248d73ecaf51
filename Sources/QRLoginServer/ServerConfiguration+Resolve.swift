import Foundation
import Logging
import NIOCore
import QRLoginPostgres

extension ServerConfiguration {
    /// The configuration of `qrlogin serve`: each setting from its option if given, else from
    /// its environment variable if set and not empty, else the default.
    /// - Throws: ``ServerConfigurationError`` naming the first setting whose value is malformed
    ///   or out of range.
    public static func resolve(options: ServeOptions = ServeOptions(), environment: [String: String]) throws(ServerConfigurationError) -> ServerConfiguration {
        let input = Input(environment: environment)
        var config = ServerConfiguration()
        config.host = options.host ?? input.env("QRLOGIN_HOST") ?? config.host
        config.port = try input.int(options.port, "--port", "QRLOGIN_PORT", 0...65535) ?? config.port
        config.metricsPort = try input.int(options.metricsPort, "--metrics-port", "QRLOGIN_METRICS_PORT", 0...65535)
        config.metricsHost = options.metricsHost ?? input.env("QRLOGIN_METRICS_HOST") ?? config.metricsHost
        if let metricsPort = config.metricsPort, metricsPort != 0, metricsPort == config.port {
            let source = options.metricsPort != nil ? "--metrics-port" : "QRLOGIN_METRICS_PORT"
            throw input.error(source, "QRLOGIN_METRICS_PORT", String(metricsPort), "must differ from the server's port (metrics have a listener of their own)")
        }
        if let (value, source) = input.pick(options.database, "--database", "QRLOGIN_DATABASE") {
            if PostgresURL.isPostgres(value) {
                do {
                    _ = try PostgresURL(value)
                } catch {
                    // The URL may hold a password: name the problem, not the value.
                    throw ServerConfigurationError(variable: "QRLOGIN_DATABASE", message: "\(source): \(error.description)")
                }
            }
            config.database = value
        }
        if let value = try input.int(options.databaseTimeout, "--database-timeout", "QRLOGIN_DATABASE_TIMEOUT", 1...60) { config.databaseTimeout = value }
        if let (value, source) = input.pick(options.publicURL, "--public-url", "QRLOGIN_PUBLIC_URL") {
            guard isUsablePublicURL(value) else {
                throw input.error(source, "QRLOGIN_PUBLIC_URL", value, "must be an http or https URL with a host and no query or fragment, e.g. https://login.example.com")
            }
            config.publicURL = value
        }
        if try !input.switchValue(options.rateLimits, "--rate-limits", "QRLOGIN_RATE_LIMITS", default: true) {
            config.rateLimits = [:]
        }
        config.trustedProxies = try input.proxies(options.trustedProxies)
        if let value = try input.int(options.requestTTL, "--request-ttl", "QRLOGIN_REQUEST_TTL", 1...3600) { config.flow.requestTTL = TimeInterval(value) }
        if let value = try input.int(options.ticketTTL, "--ticket-ttl", "QRLOGIN_TICKET_TTL", 10...3600) { config.flow.ticketTTL = TimeInterval(value) }
        if let value = try input.int(options.tokenTTL, "--token-ttl", "QRLOGIN_TOKEN_TTL", 60...(366 * 24 * 3600)) { config.flow.tokenTTL = TimeInterval(value) }
        if let value = try input.int(options.proofSkew, "--proof-skew", "QRLOGIN_PROOF_SKEW", 1...600) { config.flow.proofSkew = TimeInterval(value) }
        if let value = try input.int(options.bcryptCost, "--bcrypt-cost", "QRLOGIN_BCRYPT_COST", 4...31) { config.flow.bcryptCost = UInt8(value) }
        if let value = try input.int(options.idleTimeout, "--idle-timeout", "QRLOGIN_IDLE_TIMEOUT", 1...3600) { config.idleTimeout = TimeInterval(value) }
        if let value = try input.int(options.retention, "--retention", "QRLOGIN_RETENTION", 60...(366 * 24 * 3600)) { config.flow.retention = TimeInterval(value) }
        if let value = try input.int(options.cleanupInterval, "--cleanup-interval", "QRLOGIN_CLEANUP_INTERVAL", 1...86_400) { config.cleanupInterval = TimeInterval(value) }
        config.oauth.dpopNonces = try input.switchValue(options.dpopNonces, "--dpop-nonces", "QRLOGIN_DPOP_NONCES", default: false)
        if let value = try input.int(options.deviceInterval, "--device-interval", "QRLOGIN_DEVICE_INTERVAL", 1...60) { config.oauth.deviceInterval = value }
        if let value = try input.int(options.deviceCodeTTL, "--device-code-ttl", "QRLOGIN_DEVICE_CODE_TTL", 10...3600) { config.oauth.deviceCodeTTL = TimeInterval(value) }
        if let value = try input.int(options.oauthTokenTTL, "--oauth-token-ttl", "QRLOGIN_OAUTH_TOKEN_TTL", 60...86_400) { config.oauth.accessTokenTTL = TimeInterval(value) }
        config.clientFile = options.clientFile ?? input.env("QRLOGIN_CLIENTS")
        if let (value, source) = input.pick(options.logLevel, "--log-level", "QRLOGIN_LOG_LEVEL") {
            guard let level = Logger.Level(rawValue: value.lowercased()) else {
                throw input.error(source, "QRLOGIN_LOG_LEVEL", value, "must be one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.logLevel = level
        }
        if let (value, source) = input.pick(options.logFormat, "--log-format", "QRLOGIN_LOG_FORMAT") {
            guard let format = LogFormat(rawValue: value.lowercased()) else {
                throw input.error(source, "QRLOGIN_LOG_FORMAT", value, "must be text or json")
            }
            config.logFormat = format
        }
        return config
    }

    /// http(s) with a host, and nothing a base URL cannot carry: no query, fragment or user.
    private static func isUsablePublicURL(_ text: String) -> Bool {
        guard let url = URLComponents(string: text), let scheme = url.scheme?.lowercased(),
              scheme == "http" || scheme == "https", let host = url.host, !host.isEmpty
        else { return false }
        return url.query == nil && url.fragment == nil && url.user == nil && url.password == nil
    }

    /// Options and environment, and how to name either in an error.
    private struct Input {
        let environment: [String: String]

        func env(_ name: String) -> String? {
            environment[name].flatMap { $0.isEmpty ? nil : $0 }
        }

        /// The option's value if given, else the variable's, with the name to blame.
        func pick(_ option: String?, _ optionName: String, _ variable: String) -> (String, String)? {
            if let option { return (option, optionName) }
            return env(variable).map { ($0, variable) }
        }

        func error(_ source: String, _ variable: String, _ value: String, _ problem: String) -> ServerConfigurationError {
            let given = source.hasPrefix("--") ? "\(source) \(value)" : "\(source)=\(value)"
            return ServerConfigurationError(variable: variable, message: "\(given): \(problem)")
        }

        func int(_ option: Int?, _ optionName: String, _ variable: String, _ range: ClosedRange<Int>) throws(ServerConfigurationError) -> Int? {
            guard let (text, source) = pick(option.map(String.init), optionName, variable) else { return nil }
            guard let value = Int(text), range.contains(value) else {
                throw error(source, variable, text, "must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return value
        }

        func switchValue(_ option: Bool?, _ optionName: String, _ variable: String, default: Bool) throws(ServerConfigurationError) -> Bool {
            if let option { return option }
            guard let text = env(variable) else { return `default` }
            switch text.lowercased() {
            case "on": return true
            case "off": return false
            default: throw error(variable, variable, text, "must be on or off")
            }
        }

        /// `--trusted-proxy` values if any, else the comma-separated variable; each must be an
        /// IP address, kept in the form the server sees peers in.
        func proxies(_ options: [String]) throws(ServerConfigurationError) -> [String] {
            let variable = "QRLOGIN_TRUSTED_PROXIES"
            let text = options.isEmpty ? env(variable) : nil
            let list = text.map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } } ?? options
            var proxies: [String] = []
            for entry in list where !entry.isEmpty {
                guard let address = try? SocketAddress(ipAddress: entry, port: 0), let ip = address.ipAddress else {
                    if let text { throw error(variable, variable, text, "\(entry) is not an IP address; give a comma-separated list of IP addresses") }
                    throw error("--trusted-proxy", variable, entry, "must be an IP address")
                }
                proxies.append(ip)
            }
            return proxies
        }
    }
}
