import Foundation
import Logging
import QRLoginCore
import QRLoginSQLite

/// The storage backends every HTTP-level property is checked against.
enum Backend: String, CaseIterable, CustomStringConvertible, Sendable {
    case memory, sqlite

    var description: String { rawValue }

    func makeStore() async throws -> any Store {
        switch self {
        case .memory: MemoryStore()
        case .sqlite: try await SQLiteStore.open(path: ":memory:", logger: Logger(label: "test"))
        }
    }
}
