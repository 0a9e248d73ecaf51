import Foundation
import Logging
import QRLoginCore
@testable import QRLoginPostgres
import QRLoginSQLite
import QRLoginTestSupport
import Testing

/// The storage backends every HTTP-level property is checked against; PostgreSQL when
/// `QRLOGIN_TEST_POSTGRES` names a database (scripts/test.sh starts one).
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory, sqlite, postgres

    static var allCases: [Backend] { TestPostgres.url == nil ? [.memory, .sqlite] : [.memory, .sqlite, .postgres] }

    var description: String { rawValue }

    /// Runs `body` with a fresh store of this kind, closing it afterwards.
    func withStore(_ body: (any Store) async throws -> Void) async throws {
        switch self {
        case .memory:
            try await body(MemoryStore())
        case .sqlite:
            try await TestStores.withSQLite { try await body($0) }
        case .postgres:
            try await TestPostgres.withStore { try await body($0) }
        }
    }
}

