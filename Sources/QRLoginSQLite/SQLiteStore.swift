import Foundation
import Logging
import QRLoginCore
import SQLiteNIO

/// A ``Store`` on SQLite through SQLiteNIO, which compiles SQLite into the package: users
/// install nothing, and every platform runs the same SQLite version.
///
/// The database runs in WAL mode with `synchronous=NORMAL` (durable across application crashes;
/// a power cut may lose the last transactions but never corrupts), with foreign keys on and a
/// busy timeout for other processes that open the same file.
///
/// One connection serves the store. SQLiteNIO runs each statement on its own, with no notion of
/// which task a transaction belongs to, and an actor is reentrant at every `await`; so the store
/// holds a FIFO lock around every operation, and multi-statement operations run inside
/// `BEGIN IMMEDIATE … COMMIT` under that lock. Login-request writes are also conditional on the
/// version that was read, as a second line of defence against writers outside this store.
/// Every value is a bound parameter. SQLiteNIO prepares each statement per call and exposes no
/// statement cache, so none is kept here.
public actor SQLiteStore: Store {
    private var connection: SQLiteConnection?
    private let logger: Logger
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    private init(connection: SQLiteConnection, logger: Logger) {
        self.connection = connection
        self.logger = logger
    }

    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    /// `nil` or `":memory:"` opens a private in-memory database that lives until ``close()``.
    /// - Throws: `SQLiteError` if the file cannot be opened or migrated,
    ///   ``SQLiteStoreError/schemaTooNew(version:)`` for a database from a newer build.
    public static func open(path: String?, logger: Logger = Logger(label: "qrlogin.sqlite")) async throws -> SQLiteStore {
        let storage: SQLiteConnection.Storage = switch path {
        case nil, ":memory:": .memory
        case let path?: .file(path: path)
        }
        let connection = try await SQLiteConnection.open(storage: storage, logger: logger)
        do {
            // journal_mode answers with a row; on an in-memory database it stays "memory".
            _ = try await connection.rows("PRAGMA journal_mode = WAL")
            try await connection.execute("PRAGMA synchronous = NORMAL")
            try await connection.execute("PRAGMA foreign_keys = ON")
            try await connection.execute("PRAGMA busy_timeout = 5000")
            try await SQLiteMigrations.migrate(connection, logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        return SQLiteStore(connection: connection, logger: logger)
    }

    /// Waits for running operations to finish, then closes the database. Later operations throw
    /// ``SQLiteStoreError/closed``; closing again does nothing.
    /// - Throws: `SQLiteError` if closing fails.
    public func close() async throws {
        await acquire()
        defer { release() }
        guard let connection else { return }
        self.connection = nil
        try await connection.close()
    }

    /// The schema version the database is at (`PRAGMA user_version`), for health checks.
    /// - Throws: ``SQLiteStoreError/closed`` after ``close()``, or an `SQLiteError`.
    public func schemaVersion() async throws -> Int {
        try await exclusively { connection in
            try await connection.rows("PRAGMA user_version").first?.int("user_version") ?? 0
        }
    }

    /// The newest schema version this build knows.
    public static var latestSchemaVersion: Int { SQLiteMigrations.steps.count }

    /// Runs `body` with the connection while no other operation of this store runs.
    func exclusively<T>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        await acquire()
        defer { release() }
        guard let connection else { throw SQLiteStoreError.closed }
        return try await body(connection)
    }

    /// Runs `body` in one write transaction: committed if it returns, rolled back if it throws.
    func transaction<T>(_ body: (SQLiteConnection) async throws -> T) async throws -> T {
        try await exclusively { connection in
            try await connection.execute("BEGIN IMMEDIATE")
            do {
                let result = try await body(connection)
                try await connection.execute("COMMIT")
                return result
            } catch {
                do {
                    try await connection.execute("ROLLBACK")
                } catch let rollbackError {
                    logger.error("SQLite rollback failed", metadata: ["qrlogin.sqlite.error": "\(rollbackError)"])
                }
                throw error
            }
        }
    }

    private func acquire() async {
        guard locked else {
            locked = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    /// Hands the lock straight to the longest waiter, so no newcomer can barge in between.
    private func release() {
        if waiters.isEmpty {
            locked = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}
