import Foundation
import QRLoginCore

/// The DPoP replay cache of every instance on one database.
public struct PostgresReplayCache: ReplayCache {
    let store: PostgresStore

    public init(store: PostgresStore) { self.store = store }

    public func insert(_ key: String, expiresAt: Date, now: Date) async throws -> Bool {
        try await store.insertReplayKey(key, expiresAt: expiresAt, now: now)
    }
}

/// Rate-limit buckets shared by every instance on one database.
public struct PostgresRateLimitBuckets: RateLimitBuckets {
    let store: PostgresStore

    public init(store: PostgresStore) { self.store = store }

    public func take(key: String, limit: Int, now: Date) async throws -> Int? {
        try await store.takeRateLimitToken(key: key, limit: limit, now: now)
    }
}

/// The pickup ledger kept in the request row, so every instance agrees on the PC's newest read.
public struct PostgresPickups: PickupLedger {
    let store: PostgresStore

    public init(store: PostgresStore) { self.store = store }

    public func begin(_ id: String) async throws -> UInt64 {
        guard let generation = try await store.beginPickup(id: id) else { throw QRLoginError.notFound }
        return generation
    }

    public func isCurrent(_ pickup: UInt64, of request: LoginRequest) -> Bool {
        request.pickupGeneration == pickup
    }

    public func end(_ id: String, _ pickup: UInt64) {}
}
