import Foundation
import Logging
import QRLoginCore
import QRLoginSQLite
import ServiceLifecycle

/// Deletes login requests that expired more than `retention` ago, every `interval` seconds
/// (fractions work, so tests can run passes quickly). The first pass comes one `interval` after
/// start; graceful shutdown ends the wait between passes at once.
struct CleanupService: Service {
    let store: any Store
    let clock: any NowClock
    let interval: TimeInterval
    let retention: TimeInterval
    /// How long a retired signing key stays published (the longest an ID token lives).
    let keyLifetime: TimeInterval
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
                let tokens = try await store.deleteOAuthTokens(expiredBefore: clock.now.addingTimeInterval(-retention))
                if tokens > 0 { logger.info("deleted expired OAuth tokens", metadata: ["qrlogin.deleted": "\(tokens)"]) }
                let keys = try await store.deleteSigningKeys(retiredBefore: clock.now.addingTimeInterval(-keyLifetime - retention))
                if keys > 0 { logger.info("deleted retired signing keys", metadata: ["qrlogin.deleted": "\(keys)"]) }
            } catch {
                logger.error("cleanup failed", metadata: ["qrlogin.error": "\(error)"])
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
