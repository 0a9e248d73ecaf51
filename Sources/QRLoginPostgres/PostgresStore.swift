import Foundation
import Logging
import PostgresNIO
import QRLoginCore

/// A ``Store`` on PostgreSQL, shared by any number of `qrlogin serve` instances.
///
/// **Atomicity without double winners.** Every change that depends on what was read runs in one
/// transaction that first locks the row it reads (`SELECT … FOR UPDATE`), so a concurrent caller
/// waits for the commit and then reads the new row; changes that need no read are single
/// conditional statements (`UPDATE … WHERE … RETURNING`, `INSERT … ON CONFLICT`). Nothing is read
/// and then written unlocked at Read Committed. Login-request writes are also conditional on the
/// version that was read, as a second line of defence.
///
/// **Waking other instances.** A login request's transition that changes its state sends
/// `NOTIFY qrlogin_login` with the request id inside its transaction, so every instance's
/// ``PostgresNotifier`` hears it at commit.
///
/// **Failing fast.** Every call has a deadline (``timeout``): while the database is unreachable
/// postgres-nio's pool waits for a connection instead of failing, so a call that passes its
/// deadline throws ``PostgresStoreError/unavailable(_:)``, which the server answers with 503.
///
/// Every value is a bound parameter; the SQL text is constant.
public final class PostgresStore: Store {
    let client: PostgresClient
    let logger: Logger
    /// The deadline of every call.
    public let timeout: Duration
    /// Where the calls' deadlines wait (a deadline fires at most its resolution late).
    let deadlines = WaitTimer(resolution: .milliseconds(50))
    private let runner: Task<Void, Never>
    /// The database this store was opened on, for the notifier's own connection.
    public let configuration: PostgresURL

    /// The channel that transitions notify on; its payload is the request id.
    public static let channel = "qrlogin_login"

    private init(client: PostgresClient, runner: Task<Void, Never>, configuration: PostgresURL, timeout: Duration, logger: Logger) {
        self.client = client
        self.runner = runner
        self.configuration = configuration
        self.timeout = timeout
        self.logger = logger
    }

    /// Connects to the database `url` names and brings its schema up to date (instances starting
    /// together apply each step once).
    /// - Parameters:
    ///   - url: a `postgres://` URL (see ``PostgresURL``).
    ///   - environment: where `PGPASSWORD` is read from when the URL carries no password.
    ///   - timeout: the deadline of every store call.
    /// - Throws: ``PostgresURLError`` for a malformed URL, ``PostgresStoreError`` when the database
    ///   cannot be reached or its schema is newer than this build.
    ///   - schema: a schema (letters, digits and `_`) to keep the tables in instead of the
    ///   user's default, made if missing: for tests that each want an empty database.
    public static func open(
        url: String, environment: [String: String] = ProcessInfo.processInfo.environment, timeout: Duration = .seconds(5),
        maximumConnections: Int = 20, schema: String? = nil, logger: Logger = Logger(label: "qrlogin.postgres")
    ) async throws -> PostgresStore {
        let parsed = try PostgresURL(url, environment: environment)
        var configuration = parsed.clientConfiguration
        // Names the connections in pg_stat_activity (the listener's is `qrlogin listener`).
        configuration.options.additionalStartupParameters = [("application_name", "qrlogin")]
        if let schema {
            guard !schema.isEmpty, schema.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) }) else {
                throw PostgresURLError(description: "a schema name is lowercase letters, digits and _")
            }
        }
        // One connection first, within the deadline: a database that cannot be reached or refuses
        // the user is reported at once and plainly, rather than by a pool that keeps retrying.
        var probeSettings = try parsed.connectionConfiguration()
        probeSettings.options.connectTimeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let probe: PostgresConnection
        do {
            probe = try await PostgresConnection.connect(configuration: probeSettings, id: 0, logger: logger)
        } catch let error as PSQLError {
            throw PostgresStoreError.cannotConnect(to: parsed.description, reason: PostgresStoreError.reason(of: error))
        }
        do {
            if let schema {
                // The name was checked above to be a plain identifier; identifiers cannot be bound.
                try await probe.query(PostgresQuery(unsafeSQL: "CREATE SCHEMA IF NOT EXISTS \(schema)"), logger: logger)
                configuration.options.additionalStartupParameters.append(("search_path", schema))
            }
        } catch {
            try? await probe.close()
            throw error
        }
        try await probe.close()
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let runner = Task { await client.run() }
        let store = PostgresStore(client: client, runner: runner, configuration: parsed, timeout: timeout, logger: logger)
        do {
            // A migration may take longer than a request should, so it has a deadline of its own.
            try await Deadline.run(within: max(timeout, .seconds(60)), on: store.deadlines) { try await PostgresMigrations.migrate(client, logger: logger) }
        } catch is DeadlineExceeded {
            await store.close()
            throw PostgresStoreError.unavailable("PostgreSQL did not finish the migration within a minute")
        } catch let error as PSQLError {
            await store.close()
            throw PostgresStoreError(error)
        } catch {
            await store.close()
            throw error
        }
        return store
    }

    /// Closes every connection. Later calls throw.
    public func close() async {
        runner.cancel()
        _ = await runner.value
        // Calls still waiting are answered now rather than at their deadlines.
        deadlines.shutdown()
    }

    /// The schema version the database is at.
    public func schemaVersion() async throws -> Int {
        try await call {
            try await PostgresMigrations.currentVersion(self.client)
        }
    }

    /// The newest schema version this build knows.
    public static var latestSchemaVersion: Int { PostgresMigrations.steps.count }

    /// Checks that the database answers now (a `SELECT 1` within the deadline).
    public func ping() async throws {
        // Read to the end, so the pooled connection goes back at once.
        _ = try await first("SELECT 1 AS one", binds()) { _ in () }
    }

    // MARK: Calls

    /// Runs `body` within ``timeout``. Storage faults (connection lost, pool closed, deadline
    /// passed) become ``PostgresStoreError/unavailable(_:)``; domain errors pass through.
    func call<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) async throws -> T {
        do {
            return try await Deadline.run(within: timeout, on: deadlines, body)
        } catch let error as PSQLError {
            throw PostgresStoreError(error)
        } catch is DeadlineExceeded {
            throw PostgresStoreError.unavailable("no answer from PostgreSQL within \(timeout)")
        }
    }

    /// Runs `body` on one pooled connection inside `BEGIN … COMMIT`, rolled back if it throws;
    /// the body's own error is rethrown as it is.
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await call {
            try await self.client.withConnection { connection in
                try await connection.query("BEGIN", logger: self.logger)
                do {
                    let result = try await body(connection)
                    try await connection.query("COMMIT", logger: self.logger)
                    return result
                } catch {
                    // A connection that failed (the server went away) has nothing to roll back, and
                    // a query on it may never be answered: the pool drops it.
                    if let failure = error as? PSQLError, failure.code != .server { throw error }
                    do {
                        try await connection.query("ROLLBACK", logger: self.logger)
                    } catch let rollbackError {
                        self.logger.error("PostgreSQL rollback failed", metadata: ["qrlogin.postgres.error": "\(String(reflecting: rollbackError))"])
                    }
                    throw error
                }
            }
        }
    }

    /// Runs `sql`, a statement that changes nothing, with `binds` on any pooled connection and
    /// decodes every row. A statement that writes goes through ``written(_:_:_:)``.
    func rows<T: Sendable>(_ sql: String, _ binds: PostgresBindings, _ decode: @escaping @Sendable (PostgresRandomAccessRow) throws -> T) async throws -> [T] {
        try await call {
            try await Self.rows(sql, binds, on: self.client, logger: self.logger, decode)
        }
    }

    /// The first row of `sql`, a statement that changes nothing, decoded, if any.
    func first<T: Sendable>(_ sql: String, _ binds: PostgresBindings, _ decode: @escaping @Sendable (PostgresRandomAccessRow) throws -> T) async throws -> T? {
        try await rows(sql, binds, decode).first
    }

    /// Runs `sql`, a statement that changes data, as a transaction of its own, decodes every row
    /// it returns, and returns once PostgreSQL has committed it.
    ///
    /// **Why a second statement.** Outside `BEGIN … COMMIT` PostgreSQL commits a statement at the
    /// `Sync` after it, but writes its `CommandComplete` before that, and postgres-nio finishes the
    /// query on `CommandComplete`. When the commit fails, or the server stops in the middle of it
    /// (its WAL flush), PostgreSQL sends that `CommandComplete` with the error: taken alone, the
    /// statement looked done and was not (a 201 for a login request that then did not exist).
    /// ``committed(_:logger:)`` waits for the commit's `ReadyForQuery`. One round trip, where
    /// `BEGIN` and `COMMIT` take two.
    func written<T: Sendable>(_ sql: String, _ binds: PostgresBindings, _ decode: @escaping @Sendable (PostgresRandomAccessRow) throws -> T) async throws -> [T] {
        try await call {
            try await self.client.withConnection { connection in
                let rows = try await Self.rows(sql, binds, on: connection, logger: self.logger, decode)
                try await Self.committed(connection, logger: self.logger)
                return rows
            }
        }
    }

    /// Returns once `connection` has finished the statement before (its `ReadyForQuery`): it runs
    /// `SELECT 1`, which postgres-nio sends only then. A commit that failed closes the connection
    /// and so fails it.
    ///
    /// Checked and sent on the connection's event loop: a query written to a connection that
    /// postgres-nio has already torn down is dropped and never answered, and the loop is where
    /// the tear-down happens, so there the check and the write cannot be split.
    static func committed(_ connection: PostgresConnection, logger: Logger) async throws {
        try await connection.eventLoop.flatSubmit { () -> EventLoopFuture<Void> in
            guard !connection.isClosed else {
                return connection.eventLoop.makeFailedFuture(PostgresStoreError.unavailable("the connection to PostgreSQL closed before the commit was confirmed"))
            }
            return connection.query("SELECT 1", logger: logger).map { _ in }
        }.get()
    }

    /// The first row `sql`, a statement that changes data, returns, decoded, once it is committed.
    func writtenFirst<T: Sendable>(_ sql: String, _ binds: PostgresBindings, _ decode: @escaping @Sendable (PostgresRandomAccessRow) throws -> T) async throws -> T? {
        try await written(sql, binds, decode).first
    }

    /// Runs `sql`, a statement that changes data, once it is committed; returns how many rows it
    /// touched when it says (`RETURNING` rows otherwise).
    @discardableResult
    func execute(_ sql: String, _ binds: PostgresBindings) async throws -> Int {
        try await written(sql, binds) { _ in () }.count
    }

    /// Runs `sql` on `source` (a pooled client, or one connection inside a transaction) and
    /// decodes every row.
    static func rows<T>(
        _ sql: String, _ binds: PostgresBindings, on source: some RowSource, logger: Logger,
        _ decode: (PostgresRandomAccessRow) throws -> T
    ) async throws -> [T] {
        let sequence = try await source.rowSequence(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
        var result: [T] = []
        for try await row in sequence { result.append(try decode(row.makeRandomAccess())) }
        return result
    }

    static func first<T>(
        _ sql: String, _ binds: PostgresBindings, on connection: PostgresConnection, logger: Logger,
        _ decode: (PostgresRandomAccessRow) throws -> T
    ) async throws -> T? {
        try await rows(sql, binds, on: connection, logger: logger, decode).first
    }

    @discardableResult
    static func execute(_ sql: String, _ binds: PostgresBindings, on connection: PostgresConnection, logger: Logger) async throws -> Int {
        try await rows(sql, binds, on: connection, logger: logger) { _ in () }.count
    }
}

/// Where a statement runs: the pool, or one connection (inside a transaction).
protocol RowSource {
    func rowSequence(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence
}

extension PostgresClient: RowSource {
    func rowSequence(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        try await self.query(query, logger: logger)
    }
}

extension PostgresConnection: RowSource {
    func rowSequence(_ query: PostgresQuery, logger: Logger) async throws -> PostgresRowSequence {
        try await self.query(query, logger: logger)
    }
}

/// One bound value, as SQLite's store spells them: `.text(…)`, `date.pg`, `optional.pg`.
enum PGValue: Sendable {
    case text(String?)
    case int(Int?)
    case double(Double?)
    case bool(Bool?)
    case bytes([UInt8])
}

/// Binds built from a list, so a statement's values read in the order of its placeholders.
func binds(_ values: PGValue...) -> PostgresBindings {
    binds(values)
}

/// Binds built from an array.
func binds(_ values: [PGValue]) -> PostgresBindings {
    var bindings = PostgresBindings(capacity: values.count)
    for value in values {
        switch value {
        case .text(let text): if let text { bindings.append(text) } else { bindings.appendNull() }
        case .int(let int): if let int { bindings.append(Int64(int)) } else { bindings.appendNull() }
        case .double(let double): if let double { bindings.append(double) } else { bindings.appendNull() }
        case .bool(let bool): if let bool { bindings.append(bool) } else { bindings.appendNull() }
        case .bytes(let bytes): bindings.append(ByteBuffer(bytes: bytes))
        }
    }
    return bindings
}

extension Date {
    /// Times are stored as `Date` holds them, seconds since 2001-01-01 UTC in `double
    /// precision` (as SQLite's `REAL` columns keep them): converting to seconds since 1970 and
    /// back changes the last bit of about half of all dates, and records must read back equal.
    var pg: PGValue { .double(timeIntervalSinceReferenceDate) }
}

extension Optional where Wrapped == Date {
    var pg: PGValue { .double(self?.timeIntervalSinceReferenceDate) }
}

extension Optional where Wrapped == String {
    var pg: PGValue { .text(self) }
}

extension Int {
    var pg: PGValue { .int(self) }
}

extension Optional where Wrapped == Int {
    var pg: PGValue { .int(self) }
}

extension PostgresRandomAccessRow {
    func text(_ column: String) throws -> String { try self[column].decode(String.self) }
    func optionalText(_ column: String) throws -> String? { try self[column].decode(String?.self) }
    func int(_ column: String) throws -> Int { Int(try self[column].decode(Int64.self)) }
    func optionalInt(_ column: String) throws -> Int? { try self[column].decode(Int64?.self).map { Int($0) } }
    func bool(_ column: String) throws -> Bool { try self[column].decode(Bool.self) }
    func date(_ column: String) throws -> Date { Date(timeIntervalSinceReferenceDate: try self[column].decode(Double.self)) }
    func optionalDate(_ column: String) throws -> Date? { try self[column].decode(Double?.self).map(Date.init(timeIntervalSinceReferenceDate:)) }

    /// A raw-value enum stored as text.
    func enumValue<T: RawRepresentable>(_ column: String) throws -> T where T.RawValue == String {
        guard let value = T(rawValue: try text(column)) else { throw PostgresStoreError.malformedRow(column: column) }
        return value
    }
}
