import Foundation
import QRLoginCore

extension SQLiteStore {
    /// Inserts a token record.
    public func insertToken(_ token: TokenRecord) async throws {
        try exclusively { connection in
            try Self.insert(token, on: connection)
        }
    }

    /// Shared with login-request transitions, which insert inside their own transaction.
    static func insert(_ token: TokenRecord, on connection: SQLiteConnection) throws {
        try connection.execute(
            """
            INSERT INTO tokens (id, hash, account_id, device_id, device_type, origin, approved_by, created_at, expires_at, revoked_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [.text(token.id), .text(token.hash), .text(token.accountId), .text(token.deviceId), .text(token.deviceType.rawValue),
             .text(token.origin.rawValue), token.approvedBy.sqlite, token.createdAt.sqlite, token.expiresAt.sqlite, token.revokedAt.sqlite]
        )
    }

    /// The token whose hash is `hash`, revoked or not.
    public func token(hash: String) async throws -> TokenRecord? {
        try exclusively { connection in
            try Self.token(hash: hash, on: connection)
        }
    }

    /// The token, its account and its device in one read transaction: one lock, one snapshot,
    /// instead of three of each.
    public func identity(tokenHash: String) async throws -> StoredIdentity? {
        try exclusively { connection in
            try connection.execute("BEGIN")
            do {
                var identity: StoredIdentity?
                if let token = try Self.token(hash: tokenHash, on: connection),
                   let account = try Self.account(id: token.accountId, on: connection),
                   let device = try Self.device(id: token.deviceId, accountId: token.accountId, on: connection) {
                    identity = StoredIdentity(token: token, account: account, device: device)
                }
                try connection.execute("COMMIT")
                return identity
            } catch {
                try? connection.execute("ROLLBACK")
                throw error
            }
        }
    }

    private static func token(hash: String, on connection: SQLiteConnection) throws -> TokenRecord? {
        try connection.queryFirst("SELECT * FROM tokens WHERE hash = ?", [.text(hash)]) { row in
            TokenRecord(
                id: try row.text("id"), hash: try row.text("hash"), accountId: try row.text("account_id"),
                deviceId: try row.text("device_id"), deviceType: try row.enumValue("device_type"), origin: try row.enumValue("origin"),
                approvedBy: try row.optionalText("approved_by"), createdAt: try row.date("created_at"),
                expiresAt: try row.date("expires_at"), revokedAt: try row.optionalDate("revoked_at")
            )
        }
    }

    /// Revokes one token; returns whether it was active.
    public func revokeToken(id: String, at date: Date) async throws -> Bool {
        try exclusively { connection in
            try Self.revokeToken(id: id, at: date, on: connection)
        }
    }

    /// Deletes device tokens that expired, or were revoked, before `cutoff`. Returns how many.
    public func deleteTokens(endedBefore cutoff: Date) async throws -> Int {
        try exclusively { connection in
            try connection.execute("DELETE FROM tokens WHERE expires_at < ?1 OR revoked_at < ?1", [cutoff.sqlite])
            return connection.changes
        }
    }

    static func revokeToken(id: String, at date: Date, on connection: SQLiteConnection) throws -> Bool {
        let revoked = try connection.query(
            "UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL RETURNING id",
            [date.sqlite, .text(id)]
        ) { _ in true }
        return !revoked.isEmpty
    }

    /// Stores a code for `code.phone`, replacing any earlier one.
    public func putOneTimeCode(_ code: OneTimeCode) async throws {
        try exclusively { connection in
            try connection.execute(
                """
                INSERT INTO one_time_codes (phone, code_hash, expires_at, attempts) VALUES (?, ?, ?, ?)
                ON CONFLICT (phone) DO UPDATE SET
                    code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = excluded.attempts
                """,
                [.text(code.phone), .text(code.codeHash), code.expiresAt.sqlite, code.attempts.sqlite]
            )
        }
    }

    /// Checks a code in one transaction: counts the attempt, consumes the code on success, and
    /// deletes it once `maxAttempts` wrong attempts are used.
    public func checkOneTimeCode(phone: String, codeHash: String, maxAttempts: Int, at date: Date) async throws -> OneTimeCodeCheck {
        try transaction { connection in
            let stored = try connection.queryFirst("SELECT code_hash, expires_at, attempts FROM one_time_codes WHERE phone = ?", [.text(phone)]) { row in
                (hash: try row.text("code_hash"), expiresAt: try row.date("expires_at"), attempts: try row.int("attempts"))
            }
            let delete = { try connection.execute("DELETE FROM one_time_codes WHERE phone = ?", [.text(phone)]) }
            guard let stored else { return .missing }
            let attempts = stored.attempts
            guard date < stored.expiresAt, attempts < maxAttempts else {
                try delete()
                return .missing
            }
            if Secrets.constantTimeEquals(stored.hash, codeHash) {
                try delete()
                return .accepted
            }
            guard attempts + 1 < maxAttempts else {
                try delete()
                return .tooManyAttempts
            }
            try connection.execute("UPDATE one_time_codes SET attempts = ? WHERE phone = ?", [(attempts + 1).sqlite, .text(phone)])
            return .rejected(remaining: maxAttempts - attempts - 1)
        }
    }
}
