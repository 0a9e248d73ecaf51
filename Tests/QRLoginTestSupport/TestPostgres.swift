import Foundation
import Logging
@testable import QRLoginPostgres

/// The PostgreSQL database the tests may use: `QRLOGIN_TEST_POSTGRES` names it (scripts/test.sh
/// starts a private server and sets it). Each test gets a schema of its own, dropped afterwards,
/// so tests running at once never see each other's rows.
public enum TestPostgres {
    public enum Failure: Error { case noDatabase }

    /// The database URL, or nil when the PostgreSQL tests are off.
    public static var url: String? {
        ProcessInfo.processInfo.environment["QRLOGIN_TEST_POSTGRES"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// A new schema's name.
    public static func makeSchema() -> String {
        "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
    }

    /// Opens a store on `schema` of the test database, as `user` (the URL's own when nil). The
    /// deadline is long: many tests run at once on two cores.
    public static func open(schema: String, user: String? = nil, timeout: Duration = .seconds(60)) async throws -> PostgresStore {
        guard var url = Self.url else { throw Failure.noDatabase }
        if let user { url = url.replacingOccurrences(of: "postgres://qrlogin@", with: "postgres://\(user)@") }
        var logger = Logger(label: "test.postgres")
        logger.logLevel = .critical
        return try await PostgresStore.open(url: url, timeout: timeout, maximumConnections: 8, schema: schema, logger: logger)
    }

    /// Runs `body` with a store on a fresh schema, then drops the schema.
    public static func withStore(_ body: (PostgresStore) async throws -> Void) async throws {
        let schema = makeSchema()
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
