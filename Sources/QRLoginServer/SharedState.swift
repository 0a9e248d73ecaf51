import Crypto
import Foundation
import Logging
import QRLoginCore
import QRLoginPostgres
import QRLoginSQLite

/// The state that decides what a request may do besides the store's records: the DPoP replay
/// cache, rate-limit buckets, the PC's newest read, the notifier that wakes waiting PCs, and the
/// keys of one-time codes and DPoP nonces. One instance keeps them in its memory; instances on
/// PostgreSQL share them through the database, so nothing that affects correctness stays in one
/// process.
struct SharedState: Sendable {
    var replayCache: any ReplayCache
    var buckets: any RateLimitBuckets
    var pickups: any PickupLedger
    var notifier: any LoginEventNotifier
    /// The PostgreSQL listener to run as a service, if any.
    var listener: PostgresNotifier?
    var codeKey: SymmetricKey
    var nonceKey: SymmetricKey
    /// Deletes expired shared rows (see ``CleanupService``); nil in memory.
    var cleanup: (@Sendable (Date) async throws -> Int)?
    /// Throws while this instance cannot serve (``QRLoginError/storeUnavailable``).
    var ready: @Sendable () async throws -> Void

    /// The shared state for `store`; `given` is a notifier the caller chose (tests), used
    /// instead of the one this would make (and run, if it is a PostgreSQL listener).
    static func make(for store: any Store, given: (any LoginEventNotifier)?, logger: Logger) async throws -> SharedState {
        if let postgres = store as? PostgresStore {
            let listener = (given as? PostgresNotifier) ?? (given == nil ? PostgresNotifier(store: postgres, logger: logger) : nil)
            let codeKey = try await postgres.sharedSecret(named: "one_time_code_key") { Self.randomKey() }
            let nonceKey = try await postgres.sharedSecret(named: "dpop_nonce_key") { Self.randomKey() }
            return SharedState(
                replayCache: PostgresReplayCache(store: postgres), buckets: PostgresRateLimitBuckets(store: postgres),
                pickups: PostgresPickups(store: postgres), notifier: given ?? listener ?? InProcessNotifier(), listener: listener,
                codeKey: SymmetricKey(data: codeKey), nonceKey: SymmetricKey(data: nonceKey),
                cleanup: { now in
                    // Buckets untouched for a minute have refilled: the same as no row.
                    try await postgres.deleteReplayKeys(expiredBefore: now) + postgres.deleteRateLimits(idleSince: now.addingTimeInterval(-60))
                },
                ready: {
                    // The listener notices a lost database at once; the ping only at its deadline.
                    guard listener?.isListening ?? true else { throw QRLoginError.storeUnavailable }
                    try await postgres.ping()
                }
            )
        }
        if let sqlite = store as? SQLiteStore {
            // One instance, but its replay cache must outlive the process: a proof accepted
            // before a crash or restart is refused after it.
            return SharedState(
                replayCache: SQLiteReplayCache(store: sqlite), buckets: MemoryRateLimitBuckets(), pickups: InProcessPickups(),
                notifier: given ?? InProcessNotifier(), listener: nil, codeKey: SymmetricKey(size: .bits256),
                nonceKey: SymmetricKey(size: .bits256), cleanup: { now in try sqlite.deleteReplayKeys(expiredBefore: now) },
                ready: { _ = try await store.loginRequest(id: "health-check") }
            )
        }
        // A memory store records the proofs of refreshes itself: the same cache serves the rest.
        return SharedState(
            replayCache: (store as? MemoryStore)?.replayCache ?? MemoryReplayCache(), buckets: MemoryRateLimitBuckets(), pickups: InProcessPickups(), notifier: given ?? InProcessNotifier(),
            listener: nil, codeKey: SymmetricKey(size: .bits256), nonceKey: SymmetricKey(size: .bits256), cleanup: nil,
            ready: { _ = try await store.loginRequest(id: "health-check") }
        )
    }

    private static func randomKey() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }
}
