import Foundation
import QRLoginCore

extension SQLiteStore {
    /// Records proof key `key` until `expiresAt`. Returns false when it was recorded before and
    /// is still live at `now` (a replay). Kept in the database, not in the process, so a
    /// restart or a crash does not reopen the window in which a proof it accepted would be
    /// accepted again. A row that has expired but not yet been deleted is taken over.
    public func insertReplayKey(_ key: String, expiresAt: Date, now: Date) throws -> Bool {
        try exclusively { connection in
            try Self.insertReplayKey(key, expiresAt: expiresAt, now: now, on: connection)
        }
    }

    /// ``insertReplayKey(_:expiresAt:now:)`` on `connection`, in its transaction if it is in one.
    static func insertReplayKey(_ key: String, expiresAt: Date, now: Date, on connection: SQLiteConnection) throws -> Bool {
        // The first 132 bits of the key's SHA-256: a short fixed-size row, and no collision
        // between proofs in any window the table can hold.
        let digest = String(Secrets.hash(key).prefix(22))
        try connection.execute(
            """
            INSERT INTO dpop_replays (digest, expires_at) VALUES (?1, ?2)
            ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at WHERE dpop_replays.expires_at <= ?3
            """,
            [.text(digest), expiresAt.sqlite, now.sqlite]
        )
        return connection.changes == 1
    }

    /// Deletes replay keys that expired before `cutoff`. Returns how many.
    public func deleteReplayKeys(expiredBefore cutoff: Date) throws -> Int {
        try exclusively { connection in
            try connection.execute("DELETE FROM dpop_replays WHERE expires_at < ?", [cutoff.sqlite])
            return connection.changes
        }
    }
}

/// The DPoP replay cache of a server on SQLite, in the database (see
/// ``SQLiteStore/insertReplayKey(_:expiresAt:now:)``).
public struct SQLiteReplayCache: ReplayCache {
    let store: SQLiteStore

    /// The cache in `store`'s database.
    public init(store: SQLiteStore) { self.store = store }

    public func insert(_ key: String, expiresAt: Date, now: Date) async throws -> Bool {
        try store.insertReplayKey(key, expiresAt: expiresAt, now: now)
    }
}
