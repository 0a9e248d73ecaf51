import Crypto
import Foundation
import PostgresNIO
import QRLoginCore

/// The short-lived state that several instances must share, kept in PostgreSQL: DPoP proof ids
/// seen (the replay cache), rate-limit buckets, and secrets made once for all instances.
extension PostgresStore {
    // MARK: Replay cache

    /// Records proof key `key` until `expiresAt`. Returns false when it was recorded before and
    /// is still live at `now` (a replay, whichever instance saw it first). A row that has expired
    /// but not yet been deleted is taken over, so a late cleanup never refuses a fresh proof.
    public func insertReplayKey(_ key: String, expiresAt: Date, now: Date) async throws -> Bool {
        try await execute(Self.insertReplayKeySQL, Self.replayKeyBinds(key, expiresAt: expiresAt, now: now)) == 1
    }

    /// ``insertReplayKey(_:expiresAt:now:)`` on `connection`, inside its transaction.
    static func insertReplayKey(_ key: String, expiresAt: Date, now: Date, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await execute(insertReplayKeySQL, replayKeyBinds(key, expiresAt: expiresAt, now: now), on: connection, logger: logger) == 1
    }

    private static let insertReplayKeySQL = """
        INSERT INTO dpop_replays AS r (digest, expires_at) VALUES ($1, $2)
        ON CONFLICT (digest) DO UPDATE SET expires_at = excluded.expires_at WHERE r.expires_at <= $3
        RETURNING 1 AS fresh
        """

    private static func replayKeyBinds(_ key: String, expiresAt: Date, now: Date) -> PostgresBindings {
        binds(.bytes(Array(SHA256.hash(data: Data(key.utf8)).prefix(16))), expiresAt.pg, now.pg)
    }

    /// Deletes replay keys that expired before `cutoff`, at most `batch` at a time until none is
    /// left, so no statement holds many row locks. Returns how many.
    public func deleteReplayKeys(expiredBefore cutoff: Date, batch: Int = 5000) async throws -> Int {
        var total = 0
        while true {
            let deleted = try await execute(
                """
                DELETE FROM dpop_replays WHERE digest IN (SELECT digest FROM dpop_replays WHERE expires_at < $1 LIMIT $2)
                RETURNING 1 AS gone
                """,
                binds(cutoff.pg, batch.pg)
            )
            total += deleted
            if deleted < batch { return total }
        }
    }

    // MARK: Rate limits

    /// Takes one token from bucket `key`, which holds at most `limit` and refills at `limit` a
    /// minute; one statement, so concurrent instances share the bucket exactly.
    /// - Returns: nil when a token was taken, else the seconds until the next one.
    public func takeRateLimitToken(key: String, limit: Int, now: Date) async throws -> Int? {
        let rate = Double(limit) / 60
        let row = try await writtenFirst(
            """
            INSERT INTO rate_limits AS b (key, tokens, updated_at, allowed) VALUES ($1, $2 - 1, $3, true)
            ON CONFLICT (key) DO UPDATE SET
                tokens = LEAST($2, b.tokens + GREATEST(0, $3 - b.updated_at) * $4)
                    - CASE WHEN LEAST($2, b.tokens + GREATEST(0, $3 - b.updated_at) * $4) >= 1 THEN 1 ELSE 0 END,
                allowed = LEAST($2, b.tokens + GREATEST(0, $3 - b.updated_at) * $4) >= 1,
                updated_at = GREATEST(b.updated_at, $3)
            RETURNING tokens, allowed
            """,
            binds(.text(key), .double(Double(limit)), now.pg, .double(rate))
        ) { row in (tokens: try row[ "tokens"].decode(Double.self), allowed: try row.bool("allowed")) }
        guard let row, !row.allowed else { return nil }
        return max(1, Int(((1 - row.tokens) / rate).rounded(.up)))
    }

    /// Deletes buckets untouched since `cutoff` (full again by then).
    public func deleteRateLimits(idleSince cutoff: Date) async throws -> Int {
        try await writtenFirst(
            "WITH gone AS (DELETE FROM rate_limits WHERE updated_at < $1 RETURNING 1) SELECT count(*) AS n FROM gone", binds(cutoff.pg)
        ) { try $0.int("n") } ?? 0
    }

    // MARK: Shared secrets

    /// The secret called `name`, made from `make()` by whichever instance asks first.
    public func sharedSecret(named name: String, make: @Sendable () -> [UInt8]) async throws -> [UInt8] {
        let candidate = make()
        try await execute(
            "INSERT INTO server_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING", binds(.text(name), .bytes(candidate))
        )
        guard let value = try await first("SELECT value FROM server_secrets WHERE name = $1", binds(.text(name)), { row in
            var buffer = try row["value"].decode(ByteBuffer.self)
            return buffer.readBytes(length: buffer.readableBytes) ?? []
        }) else { throw PostgresStoreError.malformedRow(column: "server_secrets.value") }
        return value
    }
}
