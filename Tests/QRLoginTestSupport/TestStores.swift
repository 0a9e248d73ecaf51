import Foundation
import QRLoginSQLite

/// SQLite stores for tests: opened fresh, closed afterwards whatever happens.
public enum TestStores {
    /// Runs `body` with a SQLite store at `path` (nil: in memory), then closes it.
    public static func withSQLite(path: String? = nil, _ body: (SQLiteStore) async throws -> Void) async throws {
        let store = try await SQLiteStore.open(path: path)
        do {
            try await body(store)
        } catch {
            try? await store.close()
            throw error
        }
        try await store.close()
    }

    /// A database file in the temporary directory: its path, and removing it with its WAL files.
    public enum TemporaryFile {
        public static func path() -> String {
            FileManager.default.temporaryDirectory.appendingPathComponent("qrlogin-test-\(UUID().uuidString).sqlite").path
        }

        public static func remove(_ path: String) {
            for suffix in ["", "-wal", "-shm"] {
                try? FileManager.default.removeItem(atPath: path + suffix)
            }
        }
    }
}
