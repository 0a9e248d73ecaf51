import QRLoginCore
import VaporCSQLite

/// SQLite's WAL hook: context, connection, database name, frames in the WAL.
typealias WALHook = @convention(c) (UnsafeMutableRawPointer?, OpaquePointer?, UnsafePointer<CChar>?, Int32) -> Int32

/// A value bound to a statement parameter. Every value reaches SQLite as a bound parameter,
/// never as SQL text.
enum SQLiteValue {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
}

/// One `sqlite3` connection, driven synchronously through the C API that SQLiteNIO compiles in
/// (its `VaporCSQLite` module, whose functions carry a `sqlite_nio_` prefix).
///
/// Not thread-safe on purpose: the connection is opened with `SQLITE_OPEN_NOMUTEX` and its
/// owner (``SQLiteStore``) calls it under one lock, so SQLite's own per-call mutex is not paid
/// twice. Prepared statements are kept per SQL string for the life of the connection; SQLite
/// re-prepares them by itself when the schema changes.
final class SQLiteConnection {
    /// A prepared statement and the positions of its result columns by name.
    private final class Statement {
        let handle: OpaquePointer
        var columns: [String: Int32] = [:]
        var columnCount: Int32 = -1

        init(handle: OpaquePointer) {
            self.handle = handle
        }

        /// Result columns are learnt on first use and again if SQLite re-prepared the
        /// statement with a different shape (`SELECT *` after a schema change).
        func refreshColumns() {
            let count = sqlite_nio_sqlite3_column_count(handle)
            guard count != columnCount else { return }
            var columns: [String: Int32] = [:]
            columns.reserveCapacity(Int(count))
            for index in 0..<count {
                if let name = sqlite_nio_sqlite3_column_name(handle, index) {
                    columns[String(cString: name)] = index
                }
            }
            self.columns = columns
            self.columnCount = count
        }
    }

    private var handle: OpaquePointer?
    private var statements: [String: Statement] = [:]

    /// Serialises SQLite's one-time global initialisation, as SQLiteNIO does before its first open.
    private static let initialized: Bool = sqlite_nio_sqlite3_initialize() == SQLITE_OK

    private init(handle: OpaquePointer) {
        self.handle = handle
    }

    /// Opens (creating if needed) the database at `path`; `":memory:"` opens a private
    /// in-memory database.
    static func open(path: String) throws -> SQLiteConnection {
        _ = initialized
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_CREATE | SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI | SQLITE_OPEN_EXRESCODE
        let result = sqlite_nio_sqlite3_open_v2(path, &handle, flags, nil)
        guard result == SQLITE_OK, let handle else {
            let message = handle.flatMap { sqlite_nio_sqlite3_errmsg($0) }.map { String(cString: $0) }
                ?? String(cString: sqlite_nio_sqlite3_errstr(result))
            sqlite_nio_sqlite3_close_v2(handle)
            throw SQLiteStoreError.sqlite(code: Int(result), message: "Cannot open SQLite database at \(path): \(message)")
        }
        return SQLiteConnection(handle: handle)
    }

    deinit {
        for statement in statements.values {
            sqlite_nio_sqlite3_finalize(statement.handle)
        }
        sqlite_nio_sqlite3_close_v2(handle)
    }

    /// Finalizes every cached statement and closes the connection.
    func close() throws {
        guard let handle else { return }
        for statement in statements.values {
            sqlite_nio_sqlite3_finalize(statement.handle)
        }
        statements = [:]
        self.handle = nil
        let result = sqlite_nio_sqlite3_close_v2(handle)
        guard result == SQLITE_OK else {
            throw SQLiteStoreError.sqlite(code: Int(result), message: String(cString: sqlite_nio_sqlite3_errstr(result)))
        }
    }

    /// Runs one statement to completion, ignoring any rows it returns.
    /// - Parameter cached: keep the prepared statement for the next call with the same SQL;
    ///   `false` for one-off statements such as migrations.
    func execute(_ sql: String, _ binds: [SQLiteValue] = [], cached: Bool = true) throws {
        try run(sql, binds, cached: cached) { _ in }
    }

    /// Runs one statement and reads each row it returns with `read`.
    func query<T>(_ sql: String, _ binds: [SQLiteValue] = [], _ read: (SQLiteRow) throws -> T) throws -> [T] {
        var results: [T] = []
        try run(sql, binds, cached: true) { results.append(try read($0)) }
        return results
    }

    /// Runs one statement and reads its first row, if any, with `read`; later rows are not
    /// stepped.
    func queryFirst<T>(_ sql: String, _ binds: [SQLiteValue] = [], _ read: (SQLiteRow) throws -> T) throws -> T? {
        var result: T?
        try run(sql, binds, cached: true, firstRowOnly: true) { result = try read($0) }
        return result
    }

    /// Rows changed by the last INSERT, UPDATE or DELETE.
    var changes: Int {
        Int(sqlite_nio_sqlite3_changes64(handle))
    }

    /// Registers `hook`, called after every commit with the number of frames in the WAL, with
    /// `context`; nil removes it. A hook replaces SQLite's automatic checkpoint.
    func setWALHook(_ hook: WALHook?, context: UnsafeMutableRawPointer?) {
        _ = sqlite_nio_sqlite3_wal_hook(handle, hook, context)
    }

    /// A passive checkpoint of the main database: copies what it can from the WAL into the
    /// database file without waiting for readers or writers. Returns how many frames of the log
    /// are now checkpointed; SQLITE_BUSY (another checkpoint running) counts as none. Throws if
    /// the connection is not in WAL mode.
    func checkpointPassive() throws -> Int {
        guard let handle else { throw SQLiteStoreError.closed }
        var log: Int32 = 0
        var done: Int32 = 0
        let result = sqlite_nio_sqlite3_wal_checkpoint_v2(handle, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &done)
        if result == SQLITE_BUSY { return 0 }
        guard result == SQLITE_OK else { throw error(result, on: handle) }
        guard log >= 0 else {
            throw SQLiteStoreError.sqlite(code: Int(SQLITE_MISUSE), message: "checkpoint on a connection that is not in WAL mode")
        }
        return Int(done)
    }

    private func run(_ sql: String, _ binds: [SQLiteValue], cached: Bool, firstRowOnly: Bool = false, _ onRow: (SQLiteRow) throws -> Void) throws {
        guard let handle else { throw SQLiteStoreError.closed }
        let statement = try prepared(sql, cached: cached, on: handle)
        let stmt = statement.handle
        // Resetting ends the statement's read of the database at once (a cached statement left
        // mid-read would hold a WAL snapshot open). The bound values are not cleared: every call
        // binds all of them again (bind() checks the count), and sqlite3_clear_bindings expires a
        // statement whose plan looked at a bound value, so SQLite re-prepared the token lookup's
        // join on every call (BENCHMARKS.md, the OAuth scenarios' profile).
        defer {
            sqlite_nio_sqlite3_reset(stmt)
            if !cached { sqlite_nio_sqlite3_finalize(stmt) }
        }
        try bind(binds, to: stmt, on: handle)
        while true {
            let result = sqlite_nio_sqlite3_step(stmt)
            switch result {
            case SQLITE_ROW:
                statement.refreshColumns()
                try onRow(SQLiteRow(statement: stmt, columns: statement.columns))
                if firstRowOnly { return }
            case SQLITE_DONE:
                return
            default:
                throw error(result, on: handle)
            }
        }
    }

    private func prepared(_ sql: String, cached: Bool, on handle: OpaquePointer) throws -> Statement {
        if cached, let statement = statements[sql] { return statement }
        var stmt: OpaquePointer?
        let flags = cached ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let result = sqlite_nio_sqlite3_prepare_v3(handle, sql, -1, flags, &stmt, nil)
        guard result == SQLITE_OK, let stmt else {
            sqlite_nio_sqlite3_finalize(stmt)
            throw error(result == SQLITE_OK ? SQLITE_MISUSE : result, on: handle)
        }
        let statement = Statement(handle: stmt)
        if cached { statements[sql] = statement }
        return statement
    }

    private func bind(_ binds: [SQLiteValue], to stmt: OpaquePointer, on handle: OpaquePointer) throws {
        guard Int(sqlite_nio_sqlite3_bind_parameter_count(stmt)) == binds.count else {
            throw SQLiteStoreError.sqlite(code: Int(SQLITE_RANGE), message: "\(binds.count) values for \(sqlite_nio_sqlite3_bind_parameter_count(stmt)) parameters")
        }
        for (offset, value) in binds.enumerated() {
            let index = Int32(offset + 1)
            let result: Int32 = switch value {
            case .null: sqlite_nio_sqlite3_bind_null(stmt, index)
            case .integer(let value): sqlite_nio_sqlite3_bind_int64(stmt, index, value)
            case .real(let value): sqlite_nio_sqlite3_bind_double(stmt, index, value)
            case .text(let value):
                // A native string hands out its own NUL-terminated bytes; never a null pointer,
                // which SQLite would bind as NULL instead of an empty text.
                value.withCString { text in
                    sqlite_nio_sqlite3_bind_text64(stmt, index, text, UInt64(value.utf8.count), SQLiteConnection.transient, UInt8(SQLITE_UTF8))
                }
            }
            guard result == SQLITE_OK else { throw error(result, on: handle) }
        }
    }

    private func error(_ code: Int32, on handle: OpaquePointer) -> SQLiteStoreError {
        let message = sqlite_nio_sqlite3_errmsg(handle).map { String(cString: $0) } ?? String(cString: sqlite_nio_sqlite3_errstr(code))
        return .sqlite(code: Int(code), message: message)
    }

    /// `SQLITE_TRANSIENT`: SQLite copies the bound bytes before the bind call returns.
    private static var transient: sqlite3_destructor_type {
        unsafeBitCast(-1, to: sqlite3_destructor_type.self)
    }
}

/// The current row of a running statement; valid only inside the closure that receives it.
struct SQLiteRow {
    fileprivate let statement: OpaquePointer
    fileprivate let columns: [String: Int32]

    private func column(_ name: String, _ type: Int32) throws -> Int32? {
        guard let index = columns[name] else { throw SQLiteStoreError.malformedRow(column: name) }
        let actual = sqlite_nio_sqlite3_column_type(statement, index)
        if actual == SQLITE_NULL { return nil }
        guard actual == type else { throw SQLiteStoreError.malformedRow(column: name) }
        return index
    }

    func optionalText(_ name: String) throws -> String? {
        guard let index = try column(name, SQLITE_TEXT) else { return nil }
        guard let bytes = sqlite_nio_sqlite3_column_text(statement, index) else { throw SQLiteStoreError.malformedRow(column: name) }
        let count = Int(sqlite_nio_sqlite3_column_bytes(statement, index))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    func optionalInt(_ name: String) throws -> Int? {
        guard let index = try column(name, SQLITE_INTEGER) else { return nil }
        return Int(sqlite_nio_sqlite3_column_int64(statement, index))
    }

    func optionalDouble(_ name: String) throws -> Double? {
        guard let index = try column(name, SQLITE_FLOAT) else { return nil }
        return sqlite_nio_sqlite3_column_double(statement, index)
    }
}

extension SQLiteStoreError {
    /// Whether SQLite refused a write for a UNIQUE or PRIMARY KEY clash.
    var isUniqueViolation: Bool {
        guard case .sqlite(let code, _) = self else { return false }
        // SQLITE_CONSTRAINT_PRIMARYKEY and _UNIQUE, which Swift does not import from the header.
        let constraint = Int(SQLITE_CONSTRAINT)
        return code == constraint || code == constraint | (6 << 8) || code == constraint | (8 << 8)
    }
}
