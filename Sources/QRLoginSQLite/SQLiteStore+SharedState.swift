import Foundation
import QRLoginCore

extension SQLiteStore {
    /// Records proof key `key`, of a proof issued at `issuedAt`, until `expiresAt`. Returns false
    /// when it was recorded before and is still live at `now` (a replay). Kept in the database,
    /// not in the process, so a restart or a crash does not reopen the window in which a proof it
    /// accepted would be accepted again. A row that has expired but not yet been deleted is taken
    /// over.
    public func insertReplayKey(_ key: String, issuedAt: Date, expiresAt: Date, now: Date) throws -> Bool {
        try exclusively { connection in
            try insertReplayKey(key, issuedAt: issuedAt, expiresAt: expiresAt, now: now, on: connection)
        }
    }

    /// ``insertReplayKey(_:issuedAt:expiresAt:now:)`` on `connection` (the store's, under its
    /// lock), in its transaction if it is in one.
    ///
    /// The records are ordered by the proof's `iat`, then a digest of the key: proofs arrive
    /// about in `iat` order, so each one is added on the table's last pages, which the commits
    /// and checkpoints before it have just written, instead of on a page at random (schema 7).
    /// Every copy of a proof has the same `iat` and key, so a replay meets its record. Records
    /// made before schema 7 are ordered by digest alone (`dpop_replays_v1`); they are looked up
    /// too until the last of them expires.
    func insertReplayKey(_ key: String, issuedAt: Date, expiresAt: Date, now: Date, on connection: SQLiteConnection) throws -> Bool {
        // The first 132 bits of the key's SHA-256: a short fixed-size row, and no collision
        // between proofs in any window the table can hold.
        let digest = String(Secrets.hash(key).prefix(22))
        if let until = legacyReplaysUntil {
            if until > now {
                let recorded = try connection.queryFirst(
                    "SELECT 1 AS recorded FROM dpop_replays_v1 WHERE digest = ?1 AND expires_at > ?2", [.text(digest), now.sqlite]
                ) { _ in true }
                if recorded == true { return false }
            } else {
                legacyReplaysUntil = nil
            }
        }
        try connection.execute(
            """
            INSERT INTO dpop_replays (issued_at, digest, expires_at) VALUES (?1, ?2, ?3)
            ON CONFLICT (issued_at, digest) DO UPDATE SET expires_at = excluded.expires_at WHERE dpop_replays.expires_at <= ?4
            """,
            [issuedAt.sqlite, .text(digest), expiresAt.sqlite, now.sqlite]
        )
        return connection.changes == 1
    }

    /// Deletes replay keys that expired before `cutoff`. Returns how many.
    public func deleteReplayKeys(expiredBefore cutoff: Date) throws -> Int {
        try exclusively { connection in
            // A record expires after its proof's iat, so only records issued before the cutoff
            // can have expired: the key's order finds them without reading the rest.
            try connection.execute("DELETE FROM dpop_replays WHERE issued_at < ?1 AND expires_at < ?1", [cutoff.sqlite])
            var deleted = connection.changes
            try connection.execute("DELETE FROM dpop_replays_v1 WHERE expires_at < ?", [cutoff.sqlite])
            deleted += connection.changes
            return deleted
        }
    }
}

/// The DPoP replay cache of a server on SQLite, in the database (see
/// ``SQLiteStore/insertReplayKey(_:issuedAt:expiresAt:now:)``).
public struct SQLiteReplayCache: ReplayCache {
    let store: SQLiteStore

    /// The cache in `store`'s database.
    public init(store: SQLiteStore) { self.store = store }

    public func insert(_ key: String, issuedAt: Date, expiresAt: Date, now: Date) async throws -> Bool {
        try store.insertReplayKey(key, issuedAt: issuedAt, expiresAt: expiresAt, now: now)
    }
}
