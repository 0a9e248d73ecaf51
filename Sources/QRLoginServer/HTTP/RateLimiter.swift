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
/// the same size; an empty bucket answers with the seconds until the next token.
public final class RateLimiter: Sendable {
    private struct Bucket {
        var tokens: Double
        var updated: Date
    }

    private let limits: [RateLimitScope: Int]
    private let clock: any NowClock
    private let buckets = Mutex<[String: Bucket]>([:])
    private let sweepCounter = Atomic<Int>(0)

    /// Creates a limiter; a scope missing from `limits`, or with 0, is not limited.
    public init(limits: [RateLimitScope: Int], clock: any NowClock) {
        self.limits = limits
        self.clock = clock
    }

    /// The default limits per IP and minute.
    public static let defaultLimits: [RateLimitScope: Int] = [
        .register: 10, .signIn: 20, .code: 10, .create: 60, .scan: 60, .confirm: 60, .userCode: 10, .deviceAuthorization: 60,
    ]

    /// Takes one token for `scope` from `ip`'s bucket.
    /// - Throws: ``QRLoginError/rateLimited(retryAfter:)`` when the bucket is empty.
    public func check(_ scope: RateLimitScope, ip: String) throws(QRLoginError) {
        guard let limit = limits[scope], limit > 0 else { return }
        let now = clock.now
        let rate = Double(limit) / 60
        let key = scope.rawValue + " " + ip
        let retryAfter: Int? = buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: Double(limit), updated: now)
            bucket.tokens = min(Double(limit), bucket.tokens + max(0, now.timeIntervalSince(bucket.updated)) * rate)
            bucket.updated = now
            defer { buckets[key] = bucket }
            guard bucket.tokens >= 1 else { return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up))) }
            bucket.tokens -= 1
            return nil
        }
        if sweepCounter.add(1, ordering: .relaxed).newValue % 4096 == 0 { sweep(now: now) }
        if let retryAfter { throw .rateLimited(retryAfter: retryAfter) }
    }

    /// Drops buckets that have refilled completely, so idle clients cost no memory.
    private func sweep(now: Date) {
        buckets.withLock { buckets in
            buckets = buckets.filter { now.timeIntervalSince($0.value.updated) < 60 }
        }
    }
}
