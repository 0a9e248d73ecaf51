import Foundation
import Logging
import QRLoginCore
import QRLoginPostgres

/// Everything `qrlogin serve` can be told. Defaults are safe for a single machine.
public struct ServerConfiguration: Sendable {
    /// Address to listen on.
    public var host: String = "127.0.0.1"
    /// Port to listen on (0 picks a free one).
    public var port: Int = 8080
    /// The URL clients use to reach the server; QR urls and DPoP `htu` checks are built from it.
    /// Nil means `http://HOST:PORT`.
    public var publicURL: String?
    /// SQLite database file (`:memory:` keeps everything in memory), or a `postgres://` URL for
    /// several instances sharing one PostgreSQL database.
    public var database: String = "qrlogin.sqlite"
    /// Seconds a PostgreSQL call may take before the request fails with 503 `store_unavailable`.
    public var databaseTimeout: Int = 5
    /// Lifetimes and limits of the flow.
    public var flow = FlowSettings()
    /// Lifetimes and switches of the OAuth endpoints.
    public var oauth = OAuthSettings()
    /// A JSON file of OAuth clients registered (or replaced) at start; nil: none.
    public var clientFile: String?
    /// Per-IP limits per minute; empty disables rate limiting.
    public var rateLimits: [RateLimitScope: Int] = RateLimiter.defaultLimits
    /// Proxy IPs whose `X-Forwarded-For` is believed.
    public var trustedProxies: [String] = []
    /// Seconds between runs of the cleanup of long-expired requests.
    public var cleanupInterval: TimeInterval = 300
    /// With metrics on, seconds between the passes that store `expired` on requests past
    /// their deadline (so expiries are counted).
    public var expiryInterval: TimeInterval = 15
    /// The least severe log level written.
    public var logLevel: Logger.Level = .info
    /// How the log is written: text for people, or one JSON object per line.
    public var logFormat: LogFormat = .text
    /// The port of a second listener that serves only `GET /metrics`; nil: no metrics (none
    /// are collected either).
    public var metricsPort: Int?
    /// The address the metrics listener binds to: loopback by default, so only this machine
    /// (a local Prometheus or agent) can read them.
    public var metricsHost: String = "127.0.0.1"
    /// Seconds a connection may stay open between requests, or before its first one, before
    /// the server closes it; a connection whose response is still being written (an event
    /// stream, a long poll) is never closed for being idle. Zero or less: never (`serve` accepts
    /// 1 to 3600).
    public var idleTimeout: TimeInterval = 75

    /// The defaults.
    public init() {}

    /// The database as it may be logged: a PostgreSQL URL without its password.
    public var databaseForLogs: String {
        guard PostgresURL.isPostgres(database) else { return database }
        return (try? PostgresURL(database))?.description ?? "postgres://…"
    }

    /// The public base URL without a trailing slash; an IPv6 host is bracketed.
    public var publicBaseURL: String {
        let bracketed = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        var url = publicURL ?? "http://\(bracketed):\(port)"
        while url.hasSuffix("/") { url.removeLast() }
        return url
    }
}
