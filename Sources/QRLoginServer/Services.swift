import Foundation
import Logging
import QRLoginCore
import QRLoginPostgres
import QRLoginSQLite
import ServiceLifecycle

/// Deletes login requests that expired, device and OAuth tokens that ended (expired or revoked),
/// and codes and sessions that expired, more than `retention` ago, every `interval` seconds
/// (fractions work, so tests can run passes quickly). The first pass comes one `interval` after
/// start; graceful shutdown ends the wait between passes at once.
struct CleanupService: Service {
    let store: any Store
    let clock: any NowClock
    let interval: TimeInterval
    let retention: TimeInterval
    /// How long a retired signing key stays published (the longest an ID token lives).
    let keyLifetime: TimeInterval
    /// Deletes the shared short-lived state that has expired at the given time (replay keys,
    /// full rate-limit buckets); nil when that state lives in memory. Returns how many rows.
    var sharedState: (@Sendable (Date) async throws -> Int)? = nil
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown {
                    try await Task.sleep(for: .seconds(interval))
                }
            } catch {
                return
            }
            do {
                let deleted = try await store.deleteLoginRequests(expiredBefore: clock.now.addingTimeInterval(-retention))
                if deleted > 0 { logger.info("deleted expired login requests", metadata: ["qrlogin.deleted": "\(deleted)"]) }
                let ended = try await store.deleteTokens(endedBefore: clock.now.addingTimeInterval(-retention))
                if ended > 0 { logger.info("deleted expired and revoked device tokens", metadata: ["qrlogin.deleted": "\(ended)"]) }
                let tokens = try await store.deleteOAuthTokens(expiredBefore: clock.now.addingTimeInterval(-retention))
                if tokens > 0 { logger.info("deleted expired OAuth tokens", metadata: ["qrlogin.deleted": "\(tokens)"]) }
                let keys = try await store.deleteSigningKeys(retiredBefore: clock.now.addingTimeInterval(-keyLifetime - retention))
                if keys > 0 { logger.info("deleted retired signing keys", metadata: ["qrlogin.deleted": "\(keys)"]) }
                if let sharedState {
                    let rows = try await sharedState(clock.now)
                    if rows > 0 { logger.info("deleted expired replay keys and idle rate limits", metadata: ["qrlogin.deleted": "\(rows)"]) }
                }
            } catch {
                logger.error("cleanup failed", metadata: ["qrlogin.error": "\(error)"])
            }
        }
    }
}

/// With metrics on: every `interval` seconds, stores `expired` on the requests past their
/// expiry, so that ``MeasuredStore`` counts each expiry once (on whichever instance stored it)
/// within about `interval` of it, not when the cleanup deletes the row an hour later.
struct ExpiryService: Service {
    let store: any Store
    let clock: any NowClock
    let interval: TimeInterval
    let logger: Logger

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(interval)) }
            } catch {
                return
            }
            do {
                _ = try await store.expireLoginRequests(at: clock.now)
            } catch {
                logger.warning("marking expired login requests failed", metadata: ["qrlogin.error": "\(error)"])
            }
        }
    }
}

/// Closes the SQLite store after the server has stopped.
struct SQLiteCloser: Service {
    let store: SQLiteStore

    func run() async throws {
        try? await gracefulShutdown()
        try await store.close()
    }
}

/// Stops the shared wait timer on graceful shutdown. It is listed before the server, so it stops
/// after the server has (services stop in reverse order): by then every stream has ended.
struct WaitTimerService: Service {
    let timer: WaitTimer

    func run() async throws {
        try? await gracefulShutdown()
        timer.shutdown()
    }
}

/// Closes the PostgreSQL store's connections after the server has stopped.
struct PostgresCloser: Service {
    let store: PostgresStore

    func run() async throws {
        try? await gracefulShutdown()
        await store.close()
    }
}

/// Runs the PostgreSQL listener that wakes this instance's waiting PCs, until shutdown.
struct NotifierService: Service {
    let notifier: PostgresNotifier

    func run() async throws {
        await cancelWhenGracefulShutdown {
            await notifier.run()
        }
    }
}
