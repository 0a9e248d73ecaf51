import Foundation
import QRLoginCore
import Synchronization

/// The actions that are rate limited per client IP.
public enum RateLimitScope: String, Sendable, CaseIterable {
    case register, signIn = "signin", code, create, scan, confirm
    /// Typing a device grant's user code (per IP and per account, RFC 8628 §5.1).
    case userCode = "user_code"
    /// The device authorization endpoint.
    case deviceAuthorization = "device_authorization"
}

/// Per-client-IP token buckets. Each scope allows `perMinute` requests a minute with bursts of
/// the same size; an empty bucket answers with the seconds until the next token. The buckets
/// live in memory for one instance, or in the shared database for several.
public final class RateLimiter: Sendable {
    private let limits: [RateLimitScope: Int]
    private let clock: any NowClock
    private let buckets: any RateLimitBuckets
    private let metrics: ServerMetrics?

    /// Creates a limiter; a scope missing from `limits`, or with 0, is not limited. Refusals
    /// are counted in `metrics` by scope.
    public init(limits: [RateLimitScope: Int], clock: any NowClock, buckets: any RateLimitBuckets = MemoryRateLimitBuckets(), metrics: ServerMetrics? = nil) {
        self.metrics = metrics
        self.limits = limits
        self.clock = clock
        self.buckets = buckets
    }

    /// The default limits per IP and minute.
    public static let defaultLimits: [RateLimitScope: Int] = [
        .register: 10, .signIn: 20, .code: 10, .create: 60, .scan: 60, .confirm: 60, .userCode: 10, .deviceAuthorization: 60,
    ]

    /// Takes one token for `scope` from `ip`'s bucket.
    /// - Throws: ``QRLoginError/rateLimited(retryAfter:)`` when the bucket is empty,
    ///   ``QRLoginError/storeUnavailable`` when shared buckets cannot be reached.
    public func check(_ scope: RateLimitScope, ip: String) async throws(QRLoginError) {
        guard let limit = limits[scope], limit > 0 else { return }
        let retryAfter: Int?
        do {
            retryAfter = try await buckets.take(key: scope.rawValue + " " + ip, limit: limit, now: clock.now)
        } catch {
            throw .storeUnavailable
        }
        if let retryAfter {
            metrics?.rateLimited(scope.rawValue)
            throw .rateLimited(retryAfter: retryAfter)
        }
    }
}
