import Foundation
import Logging
import QRLoginCore
@testable import QRLoginPostgres
import QRLoginSQLite
import Testing

/// The storage backends every HTTP-level property is checked against; PostgreSQL when
/// `QRLOGIN_TEST_POSTGRES` names a database (scripts/test.sh starts one).
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory, sqlite, postgres

    static var allCases: [Backend] { PostgresSchema.url == nil ? [.memory, .sqlite] : [.memory, .sqlite, .postgres] }

    var description: String { rawValue }

    /// Runs `body` with a fresh store of this kind, closing it afterwards.
    func withStore(_ body: (any Store) async throws -> Void) async throws {
        switch self {
        case .memory:
            try await body(MemoryStore())
        case .sqlite:
            let store = try await SQLiteStore.open(path: ":memory:", logger: Logger(label: "test"))
            do {
                try await body(store)
            } catch {
                try? await store.close()
                throw error
            }
            try await store.close()
        case .postgres:
            try await PostgresSchema.withStore { try await body($0) }
        }
    }
}

/// A schema of its own in the test PostgreSQL database, dropped afterwards.
enum PostgresSchema {
    static var url: String? {
        ProcessInfo.processInfo.environment["QRLOGIN_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A new empty schema's name.
    static func make() -> String {
        "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// Opens a store on `schema` of the test database, as `user` (the URL's own when nil).
    static func open(schema: String, user: String? = nil, timeout: Duration = .seconds(60)) async throws -> PostgresStore {
        var url = try #require(Self.url)
        if let user { url = url.replacingOccurrences(of: "postgres://qrlogin@", with: "postgres://\(user)@") }
        var logger = Logger(label: "test.postgres")
        logger.logLevel = .critical
        return try await PostgresStore.open(url: url, timeout: timeout, maximumConnections: 8, schema: schema, logger: logger)
    }

    /// Runs `body` with a store on a fresh schema, then drops the schema.
    static func withStore(_ body: (PostgresStore) async throws -> Void) async throws {
        let schema = make()
        let store = try await open(schema: schema)
        var failure: (any Error)?
        do {
            try await body(store)
        } catch {
            failure = error
        }
        try await store.execute("DROP SCHEMA \(schema) CASCADE", binds())
        await store.close()
        if let failure { throw failure }
    }
}
