import Foundation
import Synchronization

/// The token buckets behind rate limits. One instance keeps them in memory
/// (``MemoryRateLimitBuckets``); several share them in their database, so N instances do not
/// multiply a limit by N.
public protocol RateLimitBuckets: Sendable {
    /// Takes one token from bucket `key`, which holds at most `limit` tokens and refills at
    /// `limit` a minute (a new bucket starts full).
    /// - Returns: nil when a token was taken; else the whole seconds until the next one (≥ 1).
    /// - Throws: a storage fault of a shared implementation.
    func take(key: String, limit: Int, now: Date) async throws -> Int?
}

/// Rate-limit buckets in process memory; buckets that have refilled are dropped now and then,
/// so idle clients cost nothing.
public final class MemoryRateLimitBuckets: RateLimitBuckets {
    private struct Bucket {
        var tokens: Double
        var updated: Date
    }

    private let buckets = Mutex<[String: Bucket]>([:])
    private let sweepCounter = Atomic<Int>(0)

    /// Creates an empty set of buckets.
    public init() {}

    public func take(key: String, limit: Int, now: Date) -> Int? {
        let rate = Double(limit) / 60
        let retryAfter: Int? = buckets.withLock { buckets in
            var bucket = buckets[key] ?? Bucket(tokens: Double(limit), updated: now)
            bucket.tokens = min(Double(limit), bucket.tokens + max(0, now.timeIntervalSince(bucket.updated)) * rate)
            bucket.updated = now
            defer { buckets[key] = bucket }
            guard bucket.tokens >= 1 else { return max(1, Int(((1 - bucket.tokens) / rate).rounded(.up))) }
            bucket.tokens -= 1
            return nil
        }
        if sweepCounter.add(1, ordering: .relaxed).newValue % 4096 == 0 {
            buckets.withLock { buckets in
                buckets = buckets.filter { now.timeIntervalSince($0.value.updated) < 60 }
            }
        }
        return retryAfter
    }
}

/// Numbers the PC's reads of a login request so that only the newest may collect the token: a
/// read of a dropped connection, which the PC has since replaced, must not collect a token that
/// would never arrive (and revoke the one the reconnected PC holds).
public protocol PickupLedger: Sendable {
    /// Starts a read of request `id`; it supersedes every earlier read.
    /// - Throws: a storage fault of a shared ledger.
    func begin(_ id: String) async throws -> UInt64
    /// Whether `pickup` is still the newest read of `request`, as the store holds it inside a
    /// transition (so a newer read either comes after the collect or makes it fail).
    func isCurrent(_ pickup: UInt64, of request: LoginRequest) -> Bool
    /// Ends a read.
    func end(_ id: String, _ pickup: UInt64)
}

/// The pickup ledger of one instance, in memory.
public final class InProcessPickups: PickupLedger {
    private let state = Mutex<(next: UInt64, current: [String: UInt64])>((0, [:]))

    /// Creates an empty ledger.
    public init() {}

    public func begin(_ id: String) -> UInt64 {
        state.withLock { state in
            state.next += 1
            state.current[id] = state.next
            return state.next
        }
    }

    public func isCurrent(_ pickup: UInt64, of request: LoginRequest) -> Bool {
        state.withLock { $0.current[request.id] == pickup }
    }

    /// Forgets the request when no newer read started.
    public func end(_ id: String, _ pickup: UInt64) {
        state.withLock { state in
            if state.current[id] == pickup { state.current[id] = nil }
        }
    }
}
