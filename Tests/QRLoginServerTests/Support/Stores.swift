import Foundation
import Logging
import QRLoginCore
import QRLoginSQLite

/// The storage backends every HTTP-level property is checked against.
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory, sqlite

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
        }
    }
}
