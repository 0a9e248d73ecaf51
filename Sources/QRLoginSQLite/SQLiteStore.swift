import Foundation
import Logging
import NIOConcurrencyHelpers
import QRLoginCore

/// A ``Store`` on SQLite. The SQLite library is the one SQLiteNIO compiles into the package, so
/// users install nothing and every platform runs the same SQLite version.
///
/// The database runs in WAL mode with `synchronous=NORMAL` (durable across application crashes;
/// a power cut may lose the last transactions but never corrupts), with foreign keys on and a
/// busy timeout for other processes that open the same file. WAL checkpoints run on a thread of
/// their own (``WALCheckpointer``), not in the commits of the store's callers.
///
/// **Synchronous, on the caller's thread.** The store calls SQLite's C API (SQLiteNIO's
/// `VaporCSQLite` module) directly instead of SQLiteNIO's `SQLiteConnection`, which runs every
/// statement on NIO's thread pool: one hop there and one back per statement, a futex wake-up and
/// a context switch each, cost far more than the statement (a few microseconds; a WAL commit
/// with `synchronous=NORMAL` writes the log without an fsync). Each operation here takes one
/// lock and runs all its statements on the calling task's thread, so it **blocks that thread**
/// for its duration: typically tens of microseconds, longer only when another process holds the
/// database's write lock (up to the busy timeout), or in the rare commit that finds the WAL at
/// four times its checkpoint threshold because writes never paused (see ``WALCheckpointer``).
/// That is cheaper than the hand-offs it replaces, but it is blocking: do not call the store
/// from an executor that must never block for longer than that.
///
/// **Atomicity.** One connection serves the store and one lock guards it, held for a whole
/// operation, so no two operations interleave (an operation that finds the lock taken waits on
/// the mutex, blocking its thread meanwhile; waiters are not served in FIFO order).
/// Multi-statement operations run inside `BEGIN IMMEDIATE … COMMIT` under that lock and roll
/// back if anything throws. Login-request writes are also conditional on the version that was
/// read, as a second line of defence against writers outside this store (another process on
/// the same file). Every value is a bound parameter; prepared statements are kept per SQL
/// string for the connection's life.
public final class SQLiteStore: Store, @unchecked Sendable {
    /// Guards `connection`; held for the whole of every operation.
    private let lock = NIOLock()
    private var connection: SQLiteConnection?
    /// Checkpoints the WAL off the callers' threads; nil for an in-memory database.
    private let checkpointer: WALCheckpointer?
    private let logger: Logger
    /// Clients read before; only under `lock` (``client(id:)``).
    let clientCache = ClientCache()
    /// Usernames read before; only under `lock` (``oauthToken(hash:family:)``).
    let usernames = UsernameCache()

    private init(connection: SQLiteConnection, checkpointer: WALCheckpointer?, logger: Logger) {
        self.connection = connection
        self.checkpointer = checkpointer
        self.logger = logger
        checkpointer?.install(on: connection)
    }

    deinit {
        if let connection { checkpointer?.remove(from: connection) }
        checkpointer?.stop()
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// `nil` or `":memory:"` opens a private in-memory database that lives until ``close()``.
    /// - Parameter checkpointFrames: new WAL frames (pages written, 4 KiB each) that start a
    ///   background checkpoint; SQLite's own automatic checkpoint uses 1,000.
    /// - Throws: ``SQLiteStoreError/sqlite(code:message:)`` if the file cannot be opened or
    ///   migrated, ``SQLiteStoreError/schemaTooNew(version:)`` for a database from a newer build.
    public static func open(
        path: String?, checkpointFrames: Int = 1000, logger: Logger = Logger(label: "qrlogin.sqlite")
    ) async throws -> SQLiteStore {
        let path = path ?? ":memory:"
        let connection = try SQLiteConnection.open(path: path)
        var checkpointer: WALCheckpointer?
        do {
            // journal_mode answers with the mode now in force; an in-memory database stays "memory".
            let mode = try connection.queryFirst("PRAGMA journal_mode = WAL") { try $0.optionalText("journal_mode") }
            try connection.execute("PRAGMA synchronous = NORMAL", cached: false)
            try connection.execute("PRAGMA foreign_keys = ON", cached: false)
            try connection.execute("PRAGMA busy_timeout = 5000", cached: false)
            try SQLiteMigrations.migrate(connection, logger: logger)
            if mode??.lowercased() == "wal" {
                checkpointer = try WALCheckpointer(path: path, threshold: Int32(clamping: checkpointFrames), logger: logger)
            }
        } catch {
            try? connection.close()
            throw error
        }
        return SQLiteStore(connection: connection, checkpointer: checkpointer, logger: logger)
    }

    /// Waits for a running operation to finish, then closes the database (the last close
    /// checkpoints what is left in the WAL and removes it). Later operations throw
    /// ``SQLiteStoreError/closed``; closing again does nothing.
    /// - Throws: ``SQLiteStoreError/sqlite(code:message:)`` if closing fails.
    public func close() async throws {
        try lock.withLock {
            guard let connection else { return }
            self.connection = nil
            if let checkpointer {
                checkpointer.remove(from: connection)
                checkpointer.stop()
                let passes = checkpointer.passes
                logger.debug("SQLite WAL checkpoints", metadata: [
                    "qrlogin.sqlite.checkpoints.background": "\(passes.background)", "qrlogin.sqlite.checkpoints.inline": "\(passes.inline)",
                ])
            }
            try connection.close()
        }
    }

    /// WAL checkpoints done so far by the background thread, and inline by commits that found
    /// the log at its bound; zero for an in-memory database.
    public var checkpointPasses: (background: Int, inline: Int) {
        checkpointer?.passes ?? (0, 0)
    }

    /// The schema version the database is at (`PRAGMA user_version`), for health checks.
    /// - Throws: ``SQLiteStoreError/closed`` after ``close()``, or a storage fault.
    public func schemaVersion() async throws -> Int {
        try exclusively { connection in
            try connection.queryFirst("PRAGMA user_version") { try $0.int("user_version") } ?? 0
        }
    }

    /// The newest schema version this build knows.
    public static var latestSchemaVersion: Int { SQLiteMigrations.steps.count }

    /// Runs `body` with the connection while no other operation of this store runs.
    func exclusively<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try lock.withLock {
            guard let connection else { throw SQLiteStoreError.closed }
            return try body(connection)
        }
    }

    /// Runs `body` in one write transaction: committed if it returns, rolled back if it throws.
    func transaction<T>(_ body: (SQLiteConnection) throws -> T) throws -> T {
        try exclusively { connection in
            try connection.execute("BEGIN IMMEDIATE")
            do {
                let result = try body(connection)
                try connection.execute("COMMIT")
                return result
            } catch {
                do {
                    try connection.execute("ROLLBACK")
                } catch let rollbackError {
                    logger.error("SQLite rollback failed", metadata: ["qrlogin.sqlite.error": "\(rollbackError)"])
                }
                throw error
            }
        }
    }
}
