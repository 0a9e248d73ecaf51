import Foundation
import PostgresNIO
import QRLoginCore

extension PostgresStore {
    /// Inserts a new account.
    /// - Throws: ``QRLoginError/usernameTaken`` (case-insensitive) or ``QRLoginError/phoneTaken``.
    public func createAccount(_ account: Account) async throws {
        let key = Self.usernameKey(account.username)
        // ON CONFLICT DO NOTHING takes no constraint name when there are two, so the insert says
        // nothing when either clashes, and the reason is read afterwards (the username first, as
        // MemoryStore reports it).
        let inserted = try await execute(
            """
            INSERT INTO accounts (id, username, username_key, password_hash, phone, display_name, created_at)
            VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id
            """,
            binds(.text(account.id), .text(account.username), .text(key), .text(account.passwordHash), account.phone.pg, .text(account.displayName), account.createdAt.pg)
        )
        guard inserted == 0 else { return }
        if try await first("SELECT 1 AS taken FROM accounts WHERE username_key = $1", binds(.text(key)), { _ in true }) != nil {
            throw QRLoginError.usernameTaken
        }
        if let phone = account.phone, try await first("SELECT 1 AS taken FROM accounts WHERE phone = $1", binds(.text(phone)), { _ in true }) != nil {
            throw QRLoginError.phoneTaken
        }
        throw PostgresStoreError.database(sqlState: "23505", message: "account \(account.id) exists")
    }

    /// The account with `id`, if any.
    public func account(id: String) async throws -> Account? {
        try await first("SELECT * FROM accounts WHERE id = $1", binds(.text(id)), Self.account(from:))
    }

    /// The account whose username equals `username` case-insensitively, if any.
    public func account(username: String) async throws -> Account? {
        try await first("SELECT * FROM accounts WHERE username_key = $1", binds(.text(Self.usernameKey(username))), Self.account(from:))
    }

    /// The account with `phone`, if any.
    public func account(phone: String) async throws -> Account? {
        try await first("SELECT * FROM accounts WHERE phone = $1", binds(.text(phone)), Self.account(from:))
    }

    /// Usernames compare as Swift lowercases them (Unicode-aware), as MemoryStore and SQLite do.
    static func usernameKey(_ username: String) -> String {
        username.lowercased()
    }

    static func account(from row: PostgresRandomAccessRow) throws -> Account {
        Account(
            id: try row.text("id"), username: try row.text("username"), passwordHash: try row.text("password_hash"),
            phone: try row.optionalText("phone"), displayName: try row.text("display_name"), createdAt: try row.date("created_at")
        )
    }

    // MARK: Devices

    /// Creates the device or updates its type, name, key, last-seen, last IP and approver.
    public func upsertDevice(_ device: Device) async throws {
        try await execute(Self.upsertDeviceSQL, Self.deviceBinds(device))
    }

    static func upsert(_ device: Device, on connection: PostgresConnection, logger: Logger) async throws {
        try await execute(upsertDeviceSQL, deviceBinds(device), on: connection, logger: logger)
    }

    private static let upsertDeviceSQL = """
        INSERT INTO devices (account_id, id, type, name, public_key_jwk, created_at, last_seen_at, last_ip, approved_by)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
        ON CONFLICT (account_id, id) DO UPDATE SET
            type = excluded.type, name = excluded.name, public_key_jwk = excluded.public_key_jwk,
            last_seen_at = excluded.last_seen_at, last_ip = excluded.last_ip, approved_by = excluded.approved_by
        """

    private static func deviceBinds(_ device: Device) -> PostgresBindings {
        QRLoginPostgres.binds(
            .text(device.accountId), .text(device.id), .text(device.type.rawValue), .text(device.name), .text(device.publicKeyJWK),
            device.createdAt.pg, device.lastSeenAt.pg, .text(device.lastIP), device.approvedBy.pg
        )
    }

    /// The device `id` of `accountId`, if linked.
    public func device(id: String, accountId: String) async throws -> Device? {
        try await first("SELECT * FROM devices WHERE account_id = $1 AND id = $2", binds(.text(accountId), .text(id)), Self.device(from:))
    }

    /// All devices of `accountId`, oldest first.
    public func devices(accountId: String) async throws -> [Device] {
        try await rows("SELECT * FROM devices WHERE account_id = $1 ORDER BY created_at, id COLLATE \"C\"", binds(.text(accountId)), Self.device(from:))
    }

    /// Records a use of the device.
    public func touchDevice(id: String, accountId: String, at date: Date, ip: String) async throws {
        try await execute(
            "UPDATE devices SET last_seen_at = $1, last_ip = $2 WHERE account_id = $3 AND id = $4",
            binds(date.pg, .text(ip), .text(accountId), .text(id))
        )
    }

    /// Unlinks a device, revokes its tokens and ends the browser sessions it signed in.
    public func removeDevice(id: String, accountId: String, at date: Date) async throws -> Bool {
        let logger = self.logger
        return try await transaction { connection in
            try await Self.execute(
                "UPDATE tokens SET revoked_at = $1 WHERE account_id = $2 AND device_id = $3 AND revoked_at IS NULL",
                QRLoginPostgres.binds(date.pg, .text(accountId), .text(id)), on: connection, logger: logger
            )
            try await Self.execute(
                "UPDATE browser_sessions SET revoked_at = $1 WHERE account_id = $2 AND device_id = $3 AND revoked_at IS NULL",
                QRLoginPostgres.binds(date.pg, .text(accountId), .text(id)), on: connection, logger: logger
            )
            return try await Self.execute(
                "DELETE FROM devices WHERE account_id = $1 AND id = $2 RETURNING id", QRLoginPostgres.binds(.text(accountId), .text(id)),
                on: connection, logger: logger
            ) > 0
        }
    }

    static func device(from row: PostgresRandomAccessRow) throws -> Device {
        Device(
            id: try row.text("id"), accountId: try row.text("account_id"), type: try row.enumValue("type"),
            name: try row.text("name"), publicKeyJWK: try row.text("public_key_jwk"), createdAt: try row.date("created_at"),
            lastSeenAt: try row.date("last_seen_at"), lastIP: try row.text("last_ip"), approvedBy: try row.optionalText("approved_by")
        )
    }

    // MARK: Tokens

    /// Inserts a token record.
    public func insertToken(_ token: TokenRecord) async throws {
        try await execute(Self.insertTokenSQL, Self.tokenBinds(token))
    }

    static func insert(_ token: TokenRecord, on connection: PostgresConnection, logger: Logger) async throws {
        try await execute(insertTokenSQL, tokenBinds(token), on: connection, logger: logger)
    }

    private static let insertTokenSQL = """
        INSERT INTO tokens (id, hash, account_id, device_id, device_type, origin, approved_by, created_at, expires_at, revoked_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        """

    private static func tokenBinds(_ token: TokenRecord) -> PostgresBindings {
        QRLoginPostgres.binds(
            .text(token.id), .text(token.hash), .text(token.accountId), .text(token.deviceId), .text(token.deviceType.rawValue),
            .text(token.origin.rawValue), token.approvedBy.pg, token.createdAt.pg, token.expiresAt.pg, token.revokedAt.pg
        )
    }

    /// The token whose hash is `hash`, revoked or not.
    public func token(hash: String) async throws -> TokenRecord? {
        try await first("SELECT * FROM tokens WHERE hash = $1", binds(.text(hash)), Self.token(from:))
    }

    /// The token with its account and device, in one statement.
    public func identity(tokenHash: String) async throws -> StoredIdentity? {
        try await first(
            """
            SELECT t.*, a.username AS a_username, a.password_hash AS a_password_hash, a.phone AS a_phone,
                a.display_name AS a_display_name, a.created_at AS a_created_at,
                d.type AS d_type, d.name AS d_name, d.public_key_jwk AS d_public_key_jwk, d.created_at AS d_created_at,
                d.last_seen_at AS d_last_seen_at, d.last_ip AS d_last_ip, d.approved_by AS d_approved_by
            FROM tokens t
            JOIN accounts a ON a.id = t.account_id
            JOIN devices d ON d.account_id = t.account_id AND d.id = t.device_id
            WHERE t.hash = $1
            """,
            binds(.text(tokenHash))
        ) { row in
            let token = try Self.token(from: row)
            let account = Account(
                id: token.accountId, username: try row.text("a_username"), passwordHash: try row.text("a_password_hash"),
                phone: try row.optionalText("a_phone"), displayName: try row.text("a_display_name"), createdAt: try row.date("a_created_at")
            )
            let device = Device(
                id: token.deviceId, accountId: token.accountId, type: try row.enumValue("d_type"), name: try row.text("d_name"),
                publicKeyJWK: try row.text("d_public_key_jwk"), createdAt: try row.date("d_created_at"),
                lastSeenAt: try row.date("d_last_seen_at"), lastIP: try row.text("d_last_ip"), approvedBy: try row.optionalText("d_approved_by")
            )
            return StoredIdentity(token: token, account: account, device: device)
        }
    }

    private static func token(from row: PostgresRandomAccessRow) throws -> TokenRecord {
        TokenRecord(
            id: try row.text("id"), hash: try row.text("hash"), accountId: try row.text("account_id"),
            deviceId: try row.text("device_id"), deviceType: try row.enumValue("device_type"), origin: try row.enumValue("origin"),
            approvedBy: try row.optionalText("approved_by"), createdAt: try row.date("created_at"),
            expiresAt: try row.date("expires_at"), revokedAt: try row.optionalDate("revoked_at")
        )
    }

    /// Revokes one token; returns whether it was active.
    public func revokeToken(id: String, at date: Date) async throws -> Bool {
        try await execute(Self.revokeTokenSQL, binds(date.pg, .text(id))) > 0
    }

    /// Deletes device tokens that expired, or were revoked, before `cutoff`. Returns how many.
    public func deleteTokens(endedBefore cutoff: Date) async throws -> Int {
        try await execute("DELETE FROM tokens WHERE expires_at < $1 OR revoked_at < $1 RETURNING 1 AS gone", binds(cutoff.pg))
    }

    static func revokeToken(id: String, at date: Date, on connection: PostgresConnection, logger: Logger) async throws -> Bool {
        try await execute(revokeTokenSQL, QRLoginPostgres.binds(date.pg, .text(id)), on: connection, logger: logger) > 0
    }

    private static let revokeTokenSQL = "UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL RETURNING id"

    // MARK: One-time codes

    /// Stores a code for `code.phone`, replacing any earlier one.
    public func putOneTimeCode(_ code: OneTimeCode) async throws {
        try await execute(
            """
            INSERT INTO one_time_codes (phone, code_hash, expires_at, attempts) VALUES ($1, $2, $3, $4)
            ON CONFLICT (phone) DO UPDATE SET code_hash = excluded.code_hash, expires_at = excluded.expires_at, attempts = excluded.attempts
            """,
            binds(.text(code.phone), .text(code.codeHash), code.expiresAt.pg, code.attempts.pg)
        )
    }

    /// Checks a code atomically, under the lock of its row.
    public func checkOneTimeCode(phone: String, codeHash: String, maxAttempts: Int, at date: Date) async throws -> OneTimeCodeCheck {
        let logger = self.logger
        return try await transaction { connection in
            let stored = try await Self.first(
                "SELECT code_hash, expires_at, attempts FROM one_time_codes WHERE phone = $1 FOR UPDATE", QRLoginPostgres.binds(.text(phone)),
                on: connection, logger: logger
            ) { row in (hash: try row.text("code_hash"), expiresAt: try row.date("expires_at"), attempts: try row.int("attempts")) }
            let delete = { _ = try await Self.execute("DELETE FROM one_time_codes WHERE phone = $1", QRLoginPostgres.binds(.text(phone)), on: connection, logger: logger) }
            guard let stored else { return .missing }
            guard date < stored.expiresAt, stored.attempts < maxAttempts else {
                try await delete()
                return .missing
            }
            if Secrets.constantTimeEquals(stored.hash, codeHash) {
                try await delete()
                return .accepted
            }
            guard stored.attempts + 1 < maxAttempts else {
                try await delete()
                return .tooManyAttempts
            }
            try await Self.execute(
                "UPDATE one_time_codes SET attempts = $1 WHERE phone = $2", QRLoginPostgres.binds((stored.attempts + 1).pg, .text(phone)),
                on: connection, logger: logger
            )
            return .rejected(remaining: maxAttempts - stored.attempts - 1)
        }
    }
}
